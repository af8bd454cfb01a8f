"""The labels of delivery targets, and the redaction every log line goes through. (The metrics
of a server with several workers: tests/e2e/test_workers.py.)"""

from __future__ import annotations

import io
import json
import logging

from marketmeter.observe.logs import CallLogLine, LogFormat, formatter, redact
from marketmeter.observe.metrics import target_label
from marketmeter.protocol.hooks import JournalEntry


def test_a_target_label_drops_what_may_carry_credentials() -> None:
    assert target_label("https://user:pw@hooks.example:8443/in?token=s#x") == (
        "https://hooks.example:8443/in"
    )
    assert target_label("http://[::1]:9000/hook") == "http://[::1]:9000/hook"
    assert target_label("http://[bad") == "invalid-url"


def test_redaction_masks_every_kind_of_secret() -> None:
    signature = "a" * 64
    line = (
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature={signature} "
        'Bearer tok-123 {"secret_access_key": "wJalrXUtnFEMI", "RegistrationToken": "rt-9"} '
        "x-amzn-marketplace-token=mt-1 admin_token=adm "
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- plain-secret!"
    )

    assert redact(line, ["plain-secret"]) == (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=<redacted> "
        'Bearer <redacted> {"secret_access_key": "<redacted>", "RegistrationToken": "<redacted>"} '
        "x-amzn-marketplace-token=<redacted> admin_token=<redacted> "
        "-----BEGIN RSA PRIVATE KEY-----<redacted> <redacted>!"
    )


def call_line(fmt: LogFormat) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.calls.{fmt}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt, ["adm-s3cret"]))
    logger.addHandler(handler)
    try:
        CallLogLine(logger).record(
            JournalEntry(
                time=0.0,
                wall_time=0.0,
                request_id="req-1",
                operation="BatchMeterUsage",
                target=None,
                access_key_id="AKIATESTSELLER000001",
                product_code="prod-adm-s3cret",
                request_body=b'{"secret": "never"}',
                status=400,
                error_type="InvalidProductCodeException",
                response_body=b"",
                verdicts=(),
                duration_ms=1.23456,
                id=7,
            )
        )
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_call_is_one_line_as_text_or_json() -> None:
    text = call_line("text")
    assert text.count("\n") == 1
    assert text.split(" ", 1)[1] == (
        "INFO test.calls.text: BatchMeterUsage request_id=req-1 caller=AKIATESTSELLER000001 "
        "product=prod-<redacted> status=400 error_type=InvalidProductCodeException records=0 "
        "latency_ms=1.235 journal_id=7\n"
    )
    line = json.loads(call_line("json"))
    assert line.pop("time").endswith("Z")
    assert line == {
        "level": "info",
        "logger": "test.calls.json",
        "message": "BatchMeterUsage",
        "request_id": "req-1",
        "operation": "BatchMeterUsage",
        "caller": "AKIATESTSELLER000001",
        "product": "prod-<redacted>",
        "status": 400,
        "error_type": "InvalidProductCodeException",
        "fault": None,
        "records": 0,
        "latency_ms": 1.235,
        "journal_id": 7,
    }
