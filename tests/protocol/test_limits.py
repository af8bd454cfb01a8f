"""``ConnectionLimits`` and the refusals ``protocol.guarded_http`` writes; the end-to-end proof
of each limit is tests/e2e/test_limits.py."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketmeter.cli import main
from marketmeter.config import ConnectionLimits, Settings
from marketmeter.errors import RequestTimeoutException
from marketmeter.protocol.guarded_http import refusal_bytes
from marketmeter.testing.servers import MarketmeterServer


def test_the_defaults_are_the_documented_ones() -> None:
    assert ConnectionLimits() == ConnectionLimits(
        max_connections=1000,
        max_header_bytes=16384,
        max_headers=100,
        idle_timeout=5,
        header_timeout=10,
        request_timeout=30,
        processing_timeout=90,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_connections": 0}, "max_connections must be at least 1, got 0"),
        ({"idle_timeout": -1}, "idle_timeout must be at least 1, got -1"),
        ({"header_timeout": 31}, "header_timeout (31) must not exceed request_timeout (30)"),
    ],
)
def test_impossible_limits_are_refused(change: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match="must") as refused:
        replace(ConnectionLimits(), **change)
    assert str(refused.value) == message


def test_serve_refuses_a_header_timeout_longer_than_the_request_timeout() -> None:
    result = CliRunner().invoke(main, ["serve", "--header-timeout", "40"])
    assert result.exit_code == 2
    assert "header_timeout (40) must not exceed request_timeout (30)" in result.output


def test_a_refusal_is_a_whole_aws_json_response_that_closes_the_connection() -> None:
    wire = refusal_bytes(RequestTimeoutException("too slow"), "req-1")
    head, _, body = wire.partition(b"\r\n\r\n")
    status_line, date, *fields = head.split(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert date.startswith(b"date: ")
    assert date.endswith(b" GMT")
    assert fields == [
        b"content-type: application/x-amz-json-1.1",
        b"content-length: %d" % len(body),
        b"x-amzn-RequestId: req-1",
        b"x-amzn-ErrorType: RequestTimeoutException",
        b"connection: close",
    ]
    assert json.loads(body) == {"__type": "RequestTimeoutException", "message": "too slow"}


def test_the_in_process_test_server_enforces_the_limits_too(tmp_path: Path) -> None:
    settings = Settings(
        port=0, db=str(tmp_path / "ledger.db"), limits=ConnectionLimits(max_header_bytes=1024)
    )
    server = MarketmeterServer(settings=settings).start()
    try:
        port = int(server.endpoint.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET /_marketmeter/health HTTP/1.1\r\nX-Pad: " + b"a" * 1100 + b"\r\n\r\n"
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert answer.endswith(
        b'{"__type":"RequestHeaderFieldsTooLargeException","message":'
        b'"The request line and headers must total at most 1024 bytes"}'
    )
