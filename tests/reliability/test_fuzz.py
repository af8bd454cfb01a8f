"""Malformed input over raw HTTP (docs/reliability.md, "Malformed input gets AWS's error"): the
fuzz harness's short run in CI.

``reliability.fuzz`` against a real ``marketmeter serve`` (SQLite, or PostgreSQL under
``MARKETMETER_TEST_DB=postgresql``): 2,000 hypothesis probes and 3 slow bodies; the checker's own
verdicts are pinned first, so that a checker accepting everything cannot pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from reliability.fuzz import Reply, exchange, reply_violations, run_fuzz
from reliability.fuzz_cases import CATEGORIES, Probe, request_bytes

from tests.e2e.server_process import ServerProcess

JSON = {"content-type": "application/x-amz-json-1.1"}
PROBE = Probe("bad_json", (b"",), "BatchMeterUsage")
# src bug found by this harness: an integer member holding a non-integral number big enough to
# leave orjson's fast path answers the internal class name as __type.


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("fuzz") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


def test_checker_accepts_a_known_error_with_its_header() -> None:
    body = b'{"__type":"SerializationException","message":"bad"}'
    reply = Reply(400, {**JSON, "x-amzn-errortype": "SerializationException"}, body)
    assert reply_violations(PROBE, [reply]) == []


def test_checker_flags_server_errors_leaks_unknown_types_and_header_mismatch() -> None:
    body = b'{"__type":"KeyError","message":"Traceback (most recent call last)"}'
    reply = Reply(500, {**JSON, "x-amzn-errortype": "InternalServiceErrorException"}, body)
    assert reply_violations(PROBE, [reply]) == [
        "500: server error",
        "500: internals leaked: b'Traceback'",
        "500: unknown __type 'KeyError'",
        "500: x-amzn-ErrorType 'InternalServiceErrorException' != __type 'KeyError'",
    ]


def test_checker_flags_no_answer_a_wrong_success_and_plain_text() -> None:
    assert reply_violations(PROBE, []) == ["no response"]
    wrong = Reply(200, JSON, b'{"MeteringRecordId":"x"}')
    assert reply_violations(PROBE, [wrong]) == [
        "200: success that is not BatchMeterUsage's result: {'MeteringRecordId': 'x'}"
    ]
    plain = Reply(400, {"content-type": "text/plain"}, b"Invalid HTTP request received.")
    assert reply_violations(PROBE, [plain]) == [
        "400: plain-text answer outside the HTTP-layer categories"
    ]


def test_checker_holds_the_admin_categories_to_the_admin_error_shape() -> None:
    probe = Probe("admin_params", (b"",))
    refusal = Reply(400, {"content-type": "application/json"}, b'{"error":"e","field":"limit"}')
    assert reply_violations(probe, [refusal]) == []
    aws_shaped = Reply(400, JSON, b'{"__type":"ValidationException","message":"m"}')
    crash = Reply(500, {"content-type": "text/plain"}, b"Internal Server Error")
    assert reply_violations(probe, [aws_shaped, crash]) == [
        "400: not the admin error shape: {'__type': 'ValidationException', 'message': 'm'}",
        "500: server error",
        "500: body is not JSON: b'Internal Server Error'",
    ]


def test_checker_pins_the_oversize_status() -> None:
    probe = Probe("oversize", (b"",), "BatchMeterUsage", expect_status=413)
    body = b'{"__type":"ValidationException","message":"m"}'
    reply = Reply(400, {**JSON, "x-amzn-errortype": "ValidationException"}, body)
    assert reply_violations(probe, [reply]) == ["400: expected status 413"]


@pytest.mark.e2e
def test_two_thousand_malformed_requests_break_no_invariant(server: ServerProcess) -> None:
    report = run_fuzz(server.url, examples=2000, seed=7, slow=3)
    assert report.total == 2003
    assert set(report.requests) == set(CATEGORIES)
    assert report.requests["slow_body"] == 3
    assert report.violations == []
    assert report.billed_before == 4
    assert report.catalog_problems == 0
    assert report.statuses["413"] == report.requests["oversize"]
    assert not any(status.startswith("5") for status in report.statuses)


@pytest.mark.e2e
def test_a_non_integral_huge_number_in_an_integer_member_is_a_serialization_error(
    server: ServerProcess,
) -> None:
    body = b'{"ProductCode":"prod-container","PublicKeyVersion":-5.229524236867687e+16}'
    wire = request_bytes(body, b"AWSMPMeteringService.RegisterUsage")
    [reply] = exchange(server.port, Probe("numbers", (wire,), "RegisterUsage"))
    assert (reply.status, reply.headers["x-amzn-errortype"]) == (400, "SerializationException")
    assert orjson.loads(reply.body) == {
        "__type": "SerializationException",
        "message": "Unexpected value type at 'publicKeyVersion': expected an integer",
    }
