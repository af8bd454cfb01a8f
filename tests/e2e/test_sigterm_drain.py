"""SIGTERM with every kind of connection open (docs/reliability.md, "Shutdown"): an idle
keep-alive connection is closed at once, new connections are refused, the call being processed
is answered and stays billed, a client still sending its body is cut at the request timeout
with nothing billed, and the process exits 0 within that bound."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from marketmeter.store.base import UsageQuery
from marketmeter.store.open import open_store
from marketmeter.testing.admin_client import MarketmeterAdmin
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.timing]


def test_sigterm_answers_the_call_in_flight_cuts_the_slow_one_and_exits_0(
    tmp_path: Path, now: int
) -> None:
    server = ServerProcess(
        tmp_path / "ledger.db", CATALOG, "--request-timeout", "3", "--header-timeout", "1"
    ).start()
    try:
        admin = MarketmeterAdmin(server.url)
        admin.faults.latency(1500)
        admin.close()

        idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        idle.request("GET", "/_marketmeter/health")
        assert idle.getresponse().read()
        assert idle.sock is not None  # kept alive

        body = json.dumps(batch(record(now, "cust-bob"))).encode()
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        )
        slow_started = time.monotonic()

        answered: list[Any] = []
        in_flight = threading.Thread(
            target=lambda: answered.append(
                make_client(server.url).batch_meter_usage(
                    ProductCode="prod-legacy", UsageRecords=[record(now)]
                )
            )
        )
        in_flight.start()
        time.sleep(0.5)  # the call is in its 1.5 s of added latency

        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()

        assert idle.sock.recv(1) == b""  # closed at once, not after the idle timeout
        assert time.monotonic() - stopped_at < 1
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()

        in_flight.join(timeout=10)
        assert [r["Status"] for r in answered[0]["Results"]] == ["Success"]
        record_id = answered[0]["Results"][0]["MeteringRecordId"]

        cut = b""
        while chunk := slow.recv(65536):
            cut += chunk
        assert b'"__type":"RequestTimeoutException"' in cut
        assert cut.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert 2.9 <= time.monotonic() - slow_started < 5
        slow.close()
        idle.close()

        assert server.process.wait(timeout=10) == 0
        assert time.monotonic() - stopped_at < 5
    finally:
        server.stop()
    store = open_store(server.db_url)
    try:
        rows = store.usage_now(UsageQuery(limit=100))
    finally:
        store.close_now()
    assert [(r.metering_record_id, r.customer_identifier) for r in rows] == [
        (record_id, "cust-alice")
    ]
