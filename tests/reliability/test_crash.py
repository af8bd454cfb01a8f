"""The crash test (reliability/crash.py) in its short form, and its checker catching planted
violations: a checker that passes everything would prove nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from reliability.crash import CrashOutcome, CrashSettings, run_crash
from reliability.crash_checker import Acknowledgements, RecordKey, check
from reliability.crash_ledger import LedgerRow, integrity_problems, ledger_rows

ALICE: RecordKey = ("200000000000", "d0", 3600, "")
BOB: RecordKey = ("200000000001", "d0", 3600, "")
INSTANCE: RecordKey = ("299999999999", "hours", 3600, "i-1")


def _row(key: RecordKey, record_id: str, micros: int = 1_000_000) -> LedgerRow:
    account, dimension, hour, instance = key
    if instance:
        scope, operation = f"instance:crash-ami|{instance}", "MeterUsage"
    else:
        scope, operation = "product:crash-saas", "BatchMeterUsage"
    return LedgerRow(
        hour, scope, account, dimension, record_id, micros, operation, instance or None, 1.0
    )


def _acks(*acked: tuple[RecordKey, str]) -> Acknowledgements:
    acks = Acknowledgements()
    acks.note_sent([(ALICE, 1_000_000), (BOB, 1_000_000), (INSTANCE, 1_000_000)])
    for key, record_id in acked:
        acks.acknowledge(key, record_id)
    return acks


def test_a_faithful_ledger_has_no_violation() -> None:
    acks = _acks((ALICE, "id-a"), (INSTANCE, "id-i"))
    rows = [_row(ALICE, "id-a"), _row(INSTANCE, "id-i"), _row(BOB, "id-b")]  # bob: never acked
    verdict = check(acks, rows, [], [0.5, 1.9])
    assert verdict.violations == ()
    assert (verdict.acknowledged, verdict.rows) == (2, 3)
    assert verdict.ok


def test_the_checker_finds_a_lost_acknowledged_record() -> None:
    verdict = check(_acks((ALICE, "id-a"), (INSTANCE, "id-i")), [_row(ALICE, "id-a")], [], [])
    assert verdict.violations == (
        "lost: ('299999999999', 'hours', 3600, 'i-1') acknowledged as id-i, not in the ledger",
    )


def test_the_checker_finds_a_changed_id() -> None:
    verdict = check(_acks((ALICE, "id-a")), [_row(ALICE, "id-x")], [], [])
    assert verdict.violations == (
        "changed id: ('200000000000', 'd0', 3600, '') acknowledged id-a, stored id-x",
    )


def test_the_checker_finds_a_retry_answered_with_another_id() -> None:
    verdict = check(_acks((ALICE, "id-a"), (ALICE, "id-b")), [_row(ALICE, "id-a")], [], [])
    assert verdict.violations == (
        "id changed on retry: ('200000000000', 'd0', 3600, '') got id-a, then id-b",
    )


def test_the_checker_finds_a_record_billed_twice_and_one_never_sent() -> None:
    stranger: RecordKey = ("200000000009", "d1", 3600, "")
    rows = [_row(ALICE, "id-a"), _row(ALICE, "id-a2"), _row(stranger, "id-s")]
    verdict = check(_acks((ALICE, "id-a")), rows, [], [])
    assert verdict.violations == (
        "billed twice: (3600, 'product:crash-saas', '200000000000', 'd0') has 2 rows",
        "never sent: ('200000000009', 'd1', 3600, '') is billed (1 rows)",
    )


def test_the_checker_finds_a_changed_quantity_integrity_and_a_slow_restart() -> None:
    verdict = check(
        _acks((ALICE, "id-a")), [_row(ALICE, "id-a", 2_000_000)], ["bad page"], [0.4, 2.5]
    )
    assert verdict.violations == (
        "quantity: ('200000000000', 'd0', 3600, '') was sent as 1000000 micros",
        "integrity: bad page",
        "slow restart: #2 served again after 2.500 s (limit 2.0 s)",
    )


def _assert_clean(outcome: CrashOutcome, cycles: int) -> None:
    assert outcome.verdict.violations == ()
    assert outcome.integrity == []
    assert outcome.verdict.acknowledged > 0
    assert outcome.meter_usage_acknowledged > 0
    # The clients drained: everything they sent is acknowledged, and billed exactly once.
    assert outcome.verdict.rows == outcome.verdict.acknowledged == len(outcome.acks.sent)
    assert len(outcome.restart_seconds) == cycles
    assert max(outcome.restart_seconds) <= 2.0
    assert outcome.unanswered > 0  # the kills did cut requests off
    assert outcome.retried_records > 0


@pytest.mark.e2e
@pytest.mark.timing
def test_three_sigkill_cycles_on_sqlite_lose_nothing(tmp_path: Path) -> None:
    settings = CrashSettings(
        cycles=3, clients=2, seed=7, min_uptime=0.2, max_uptime=0.6, workers=1, kill="server"
    )
    outcome = run_crash(settings, tmp_path)
    _assert_clean(outcome, 3)
    assert outcome.database_recovery_seconds == []

    # Plant a lost record and a changed id in the real ledger: the checker must see both.
    first, second = sorted(outcome.acks.acked.values())[:2]
    with sqlite3.connect(outcome.db) as connection:
        connection.execute("DELETE FROM usage_records WHERE metering_record_id = ?", (first,))
        connection.execute(
            "UPDATE usage_records SET metering_record_id = 'planted' WHERE metering_record_id = ?",
            (second,),
        )
    connection.close()
    rows = ledger_rows(outcome.db)
    verdict = check(outcome.acks, rows, integrity_problems(outcome.db), outcome.restart_seconds)
    kinds = sorted(violation.split(":")[0] for violation in verdict.violations)
    assert kinds == ["changed id", "lost"]
    assert "stored planted" in " ".join(verdict.violations)


@pytest.mark.e2e
@pytest.mark.timing
def test_three_cycles_killing_a_worker_or_the_coordinator_of_two_workers_lose_nothing(
    tmp_path: Path,
) -> None:
    """``serve --workers 2``: each cycle SIGKILLs one of its three processes at random (seed 2:
    the coordinator, then a worker twice, each started again by the coordinator)."""
    settings = CrashSettings(
        cycles=3, clients=2, seed=2, min_uptime=0.2, max_uptime=0.6, workers=2, kill="any"
    )
    outcome = run_crash(settings, tmp_path)
    _assert_clean(outcome, 3)
    assert outcome.workers_killed == 2


@pytest.mark.e2e
@pytest.mark.timing
def test_three_cycles_of_immediate_stop_and_sigkill_on_postgresql(tmp_path: Path) -> None:
    settings = CrashSettings(
        cycles=3,
        clients=2,
        backend="postgresql",
        seed=7,
        min_uptime=0.2,
        max_uptime=0.6,
        workers=1,
        kill="server",
    )
    outcome = run_crash(settings, tmp_path)
    _assert_clean(outcome, 3)
    assert len(outcome.database_recovery_seconds) == 3
    assert outcome.db.startswith("postgresql://")
