"""The client crash test, short: client processes killed at random moments under faults, then
the ledger check (``reliability.client_crash``; the full run is 50 cycles or more)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliability.client_crash import ClientCrashOutcome, check, run_client_crash

from marketmeter.client import MeteringClient, RecordState


def test_killed_clients_lose_nothing_and_bill_nothing_twice(tmp_path: Path) -> None:
    outcome = run_client_crash(cycles=6, seed=3, workdir=tmp_path, max_life=0.5)
    assert outcome.violations == []
    assert outcome.acknowledged > 0
    assert outcome.intended - outcome.acknowledged <= outcome.cycles
    assert outcome.billed_records > 0
    assert Counter(outcome.units)["sent"] != 0


def checked(tmp_path: Path, log: str, ledger: list[dict[str, Any]]) -> list[str]:
    meter = MeteringClient(tmp_path / "s.db", "demo-saas-legacy", aws=object())
    if not meter.records():
        meter.record("alice-cust-0001", "users", 3, AT)
        meter.spool.aggregate(10**12)
        meter.spool.settle(meter.records()[0].id, RecordState.SENT, "m-1")
    (tmp_path / "events.log").write_text(log)
    outcome = ClientCrashOutcome()
    check(outcome, meter, tmp_path / "events.log", ledger, [])
    return outcome.violations


AT = datetime(2026, 11, 23, 11, 15, tzinfo=UTC)
INTENT = f"I 1-0 alice-cust-0001 users {AT.isoformat()} 3\n"
ROW = {
    "customerIdentifier": "alice-cust-0001",
    "dimension": "users",
    "hour": "2026-11-23T11:00:00Z",
    "meteringRecordId": "m-1",
    "quantity": 3,
}


def test_the_check_finds_what_is_wrong(tmp_path: Path) -> None:
    assert checked(tmp_path, INTENT + "A 1-0\n", [ROW]) == []
    assert checked(tmp_path, INTENT, [ROW]) == []  # killed after the commit, before the ack
    lost = INTENT + "A 1-0\n" + f"I 1-1 alice-cust-0001 users {AT.isoformat()} 2\nA 1-1\n"
    assert checked(tmp_path, lost, [ROW]) == [
        "('alice-cust-0001', 'users', datetime.datetime(2026, 11, 23, 11, 0, tzinfo=datetime"
        ".timezone.utc)): spool holds 3, acknowledged 5"
    ]
    twice = checked(tmp_path, INTENT + "A 1-0\n", [ROW, {**ROW, "meteringRecordId": "m-2"}])
    assert len(twice) == 2
    assert "billed twice" in twice[0]
    other = checked(tmp_path, INTENT + "A 1-0\n", [{**ROW, "quantity": 4}])
    assert len(other) == 1
    assert "ledger ('m-1', Decimal('4')), spool ('m-1', Decimal('3'))" in other[0]
    assert len(checked(tmp_path, INTENT + "A 1-0\n", [])) == 1  # sent, not billed
