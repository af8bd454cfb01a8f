"""A body shorter than its Content-Length, the client then gone: nothing is processed, even
when what did arrive is a complete, valid request (the client never sees an answer)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.backend_agnostic


def test_a_truncated_body_is_never_billed(server: ServerProcess, now: int) -> None:
    body = json.dumps(
        {
            "ProductCode": "prod-legacy",
            "UsageRecords": [
                {
                    "Timestamp": now,
                    "CustomerIdentifier": "cust-alice",
                    "Dimension": "users",
                    "Quantity": 7,
                }
            ],
        }
    ).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n"
        f"Content-Length: {len(body) + 100}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""  # no answer: the server dropped the request
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/_marketmeter/usage").json() == {"records": []}
    # the same request, whole, bills
    answer = httpx.post(
        server.url,
        content=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
        },
    )
    assert answer.json()["Results"][0]["Status"] == "Success"
    assert [
        r["quantity"] for r in httpx.get(f"{server.url}/_marketmeter/usage").json()["records"]
    ] == [7]
