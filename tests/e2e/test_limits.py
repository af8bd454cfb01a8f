"""The limits of a real ``serve`` (docs/reliability.md, "Limits"): connections, header size,
idle and slow clients, processing time, admin body size. Every refusal is checked on the wire
(status, ``__type``, ``x-amzn-ErrorType``, message, ``Connection: close``) and against the
ledger: nothing of a refused request is billed."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketmeter.testing.admin_client import MarketmeterAdmin
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.timing, pytest.mark.backend_agnostic]

LIMITS = (
    "--max-connections",
    "12",
    "--idle-timeout",
    "1",
    "--header-timeout",
    "1",
    "--request-timeout",
    "2",
    "--processing-timeout",
    "2",
)
TARGET = b"X-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with small limits: 12 connections, 1 s idle and header time, 2 s request and
    processing time (header size limits at their defaults: 16 KiB, 100 fields)."""
    process = ServerProcess(tmp_path / "ledger.db", CATALOG, *LIMITS).start()
    try:
        yield process
    finally:
        process.stop()


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head(extra: bytes = b"", length: int = 0) -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
        + TARGET
        + b"Content-Length: %d\r\n" % length
        + extra
        + b"\r\n"
    )


def request(body: bytes, extra: bytes = b"") -> bytes:
    return head(extra, len(body)) + body


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse(response: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, lower-cased headers and JSON body of one whole response."""
    head_bytes, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def answer(sock: socket.socket) -> tuple[int, Any]:
    """Status and JSON body of the next response on ``sock`` (the connection stays open)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def assert_refusal(response: bytes, status: int, code: str, message: str) -> None:
    got_status, headers, payload = parse(response)
    assert (got_status, payload) == (status, {"__type": code, "message": message})
    assert headers["x-amzn-errortype"] == code
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/x-amz-json-1.1"


def test_the_banner_states_the_limits(limited: ServerProcess) -> None:
    assert (
        "  limits:  12 connections; headers 16384 bytes, 100 fields; timeouts (s): idle 1, "
        "headers 1, request 2, processing 2\n"
    ) in limited.output()


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(
    limited: ServerProcess,
) -> None:
    with connect(limited) as sock:
        started = time.monotonic()
        assert read_to_close(sock) == b""
        assert 0.9 <= time.monotonic() - started < 3


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    limited: ServerProcess, now: int
) -> None:
    body = json.dumps(batch(record(now))).encode()
    with connect(limited) as sock:
        sock.sendall(request(body))
        assert answer(sock)[0] == 200
        started = time.monotonic()
        assert read_to_close(sock) == b""
        assert 0.9 <= time.monotonic() - started < 3


def test_headers_over_16_kib_are_refused_with_431_and_never_reach_the_service(
    limited: ServerProcess, now: int
) -> None:
    body = json.dumps(batch(record(now))).encode()
    with connect(limited) as sock:
        sock.sendall(request(body, b"X-Padding: " + b"a" * 16_000 + b"\r\n"))
        status, accepted = answer(sock)
    assert (status, [r["Status"] for r in accepted["Results"]]) == (200, ["Success"])
    with connect(limited) as sock:
        sock.sendall(request(body, b"X-Padding: " + b"a" * 16_400 + b"\r\n"))
        assert_refusal(
            read_to_close(sock),
            431,
            "RequestHeaderFieldsTooLargeException",
            "The request line and headers must total at most 16384 bytes",
        )
    admin = MarketmeterAdmin(limited.url)
    assert len(admin.usage()) == 1
    assert len(admin.journal.entries()) == 1  # the refused request never reached the service
    admin.close()


def test_a_header_that_never_ends_is_refused_before_it_is_all_sent(
    limited: ServerProcess,
) -> None:
    """A 64 MiB header value: the answer comes after the first few hundred KiB, so what the
    server buffers of a head stays bounded."""
    with connect(limited) as sock:
        sock.sendall(head()[:-2] + b"X-Endless: ")
        sent = 0
        sock.settimeout(5)
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
                time.sleep(0.02)  # time for the server to answer between chunks
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 1024 * 1024
        try:
            answer = read_to_close(sock)
        except ConnectionResetError:
            answer = b""  # the reset can overtake the answer; the bound held all the same
    if answer:
        assert parse(answer)[0] == 431


def test_more_than_100_header_fields_are_refused_with_431(limited: ServerProcess, now: int) -> None:
    body = json.dumps(batch(record(now))).encode()
    # head() sends 4 fields (Host, Content-Type, X-Amz-Target, Content-Length)
    with connect(limited) as sock:
        sock.sendall(request(body, b"".join(b"X-F%d: v\r\n" % i for i in range(96))))
        assert answer(sock)[0] == 200
    with connect(limited) as sock:
        sock.sendall(request(body, b"".join(b"X-F%d: v\r\n" % i for i in range(97))))
        assert_refusal(
            read_to_close(sock),
            431,
            "RequestHeaderFieldsTooLargeException",
            "A request may carry at most 100 header fields",
        )


def test_headers_sent_slowly_get_408_at_the_header_timeout(limited: ServerProcess) -> None:
    with connect(limited) as sock:
        started = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(3):  # a field every 0.3 s: never idle, never done
            time.sleep(0.3)
            sock.sendall(b"X-Slow-%d: v\r\n" % n)
        assert_refusal(
            read_to_close(sock),
            408,
            "RequestTimeoutException",
            "The request's headers did not arrive within 1 seconds of its first byte",
        )
        assert 0.9 <= time.monotonic() - started < 3


def test_a_body_sent_slowly_gets_408_and_is_never_processed(
    limited: ServerProcess, now: int
) -> None:
    body = json.dumps(batch(record(now))).encode()
    with connect(limited) as sock:
        started = time.monotonic()
        sock.sendall(head(length=len(body)))
        for i in range(15):  # a byte per 100 ms, stopping before the deadline
            sock.sendall(body[i : i + 1])
            time.sleep(0.1)
        assert_refusal(
            read_to_close(sock),
            408,
            "RequestTimeoutException",
            "The request's body did not arrive within 2 seconds of its first byte",
        )
        assert 1.9 <= time.monotonic() - started < 4
    admin = MarketmeterAdmin(limited.url)
    assert admin.usage() == []
    assert admin.journal.entries() == []
    admin.close()


def test_slow_clients_do_not_take_the_service_from_others(tmp_path: Path, now: int) -> None:
    """300 connections trickling headers: boto3 is still answered at once, and every slow one
    is cut at the header timeout (3 s; the trickle stops before, so no send races the cut)."""
    server = ServerProcess(tmp_path / "ledger.db", CATALOG, "--header-timeout", "3").start()
    slow = [connect(server) for _ in range(300)]
    stop = threading.Event()

    def trickle() -> None:
        for sock in slow:
            sock.sendall(b"POST / HTTP/1.1\r\n")
        trickle_until = time.monotonic() + 2
        n = 0
        while not stop.wait(0.2) and time.monotonic() < trickle_until:
            for sock in slow:
                sock.sendall(b"X-Slow-%d: v\r\n" % n)
            n += 1

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        client = make_client(server.url)
        latencies = []
        keys = [
            (hour, customer, dimension)
            for hour in range(5)
            for customer in ("cust-alice", "cust-bob")
            for dimension in ("users", "api_calls")
        ]
        for hour, customer, dimension in keys:
            started = time.monotonic()
            response = client.batch_meter_usage(
                ProductCode="prod-legacy",
                UsageRecords=[record(now - hour * 3600, customer, dimension)],
            )
            latencies.append(time.monotonic() - started)
            assert [r["Status"] for r in response["Results"]] == ["Success"]
        assert max(latencies) < 1.0, latencies
        stop.set()
        trickler.join()
        statuses = []
        for sock in slow:
            sock.settimeout(10)
            statuses.append(parse(read_to_close(sock))[0])
        assert statuses == [408] * 300
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()
        server.stop()


def test_past_max_connections_a_request_gets_503_and_sdk_retries_get_through(
    limited: ServerProcess, now: int
) -> None:
    held = [connect(limited) for _ in range(12)]
    try:
        time.sleep(0.2)  # let the server see all 12 before the 13th
        with connect(limited) as sock:
            sock.sendall(request(json.dumps(batch(record(now))).encode()))
            assert_refusal(
                read_to_close(sock),
                503,
                "ServiceUnavailableException",
                "The server has 12 connections open, its limit. Retry your request.",
            )
        single = make_client(limited.url, retries={"total_max_attempts": 1})
        with pytest.raises(ClientError) as refused:
            single.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
            "ServiceUnavailableException",
            503,
        )
    finally:
        for sock in held:
            sock.close()
    # the held connections are gone: an SDK with retries gets through
    retrying = make_client(limited.url, retries={"total_max_attempts": 5, "mode": "standard"})
    response = retrying.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
    assert [r["Status"] for r in response["Results"]] == ["Success"]
    admin = MarketmeterAdmin(limited.url)
    assert len(admin.usage()) == 1
    admin.close()


def test_a_call_not_answered_within_the_processing_timeout_gets_500_and_bills_nothing(
    limited: ServerProcess, now: int
) -> None:
    admin = MarketmeterAdmin(limited.url)
    admin.faults.latency(4000)
    client = make_client(limited.url, retries={"total_max_attempts": 1})
    started = time.monotonic()
    with pytest.raises(ClientError) as refused:
        client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
    assert 1.9 <= time.monotonic() - started < 3.5
    error = refused.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]) == (
        500,
        {
            "Code": "InternalServiceErrorException",
            "Message": "The request was not processed within 2 seconds. Retry your request.",
        },
    )
    assert admin.usage() == []
    admin.faults.latency(0)
    response = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
    assert [r["Status"] for r in response["Results"]] == ["Success"]
    admin.close()


def test_a_client_that_stops_reading_its_answer_is_cut_at_the_request_timeout(
    limited: ServerProcess,
) -> None:
    """A 10 MB answer (the journal of ten 1 MB bodies) to a client that reads none of it: once
    the socket buffers are full the server waits the request timeout (2 s), then aborts."""
    junk = b"x" * 1_000_000
    for _ in range(10):
        with connect(limited) as sock:
            sock.sendall(request(junk))
            assert answer(sock)[0] == 400  # SerializationException, journaled as text
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", limited.port))
        sock.sendall(b"GET /_marketmeter/journal?limit=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(4)
        sock.settimeout(10)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
    assert 0 < received < 10_000_000  # what the buffers held, never the whole answer
    admin = MarketmeterAdmin(limited.url)
    assert admin.journal.stats()["entries"] == 10  # the server serves on
    admin.close()


def test_admin_bodies_over_16_mib_are_refused_with_413(limited: ServerProcess) -> None:
    expected = {"error": "must be at most 16777216 bytes", "field": "body"}
    declared = (
        b"POST /_marketmeter/faults HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 16777217\r\n\r\n"
    )
    with connect(limited) as sock:
        sock.sendall(declared)
        assert answer(sock) == (413, expected)
    chunk = b"x" * (1024 * 1024)
    chunked = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    with connect(limited) as sock:
        sock.sendall(
            b"POST /_marketmeter/faults HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            for _ in range(17):
                sock.sendall(chunked)
        except OSError:
            pass
        assert answer(sock) == (413, expected)
    admin = MarketmeterAdmin(limited.url)
    assert admin.faults.rules() == []
    admin.close()
