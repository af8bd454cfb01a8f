"""The short form of ``python -m reliability.slow_clients`` (docs/reliability.md, "Limits"): 60
hostile connections (slow headers, slow bodies, idle) against a real ``serve`` with short limits
(SQLite, or PostgreSQL under ``MARKETMETER_TEST_DB=postgresql``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.slow_clients import run_attack

from marketmeter.config import ConnectionLimits
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timing]

LIMITS = ConnectionLimits(idle_timeout=1, header_timeout=2, request_timeout=3)


def test_hostile_connections_are_cut_at_their_deadlines_while_calls_are_answered(
    tmp_path: Path,
) -> None:
    server = ServerProcess(
        tmp_path / "ledger.db",
        CATALOG,
        "--idle-timeout",
        str(LIMITS.idle_timeout),
        "--header-timeout",
        str(LIMITS.header_timeout),
        "--request-timeout",
        str(LIMITS.request_timeout),
    ).start()
    try:
        assert server.process is not None
        report = run_attack(
            server.url, server.port, server.process.pid, 60, 20, LIMITS, interval=0.25
        )
    finally:
        server.stop()
    assert report.problems == []
    assert dict(report.outcomes) == {
        ("slow headers", "HTTP/1.1 408 Request Timeout"): 20,
        ("slow body", "HTTP/1.1 408 Request Timeout"): 20,
        ("idle", "closed"): 20,
    }
    assert (len(report.alone), len(report.attacked)) == (20, 20)
