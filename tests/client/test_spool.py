"""The spool: durable settings, many threads and processes recording at once, what record()
refuses, and aggregation that never changes a record once it may have been sent."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketmeter.client import Allocation, Customer, MeteringClient, Mode, RecordState, SpoolError

AT = datetime(2026, 11, 23, 11, 15, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def offline(path: Path, **options: Any) -> MeteringClient:
    """A client that must not call AWS."""
    return MeteringClient(path, "prod-x", aws=object(), clock=lambda: LATER, **options)


def test_the_spool_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    meter = offline(tmp_path / "s.db")
    assert meter.spool.pragma("journal_mode") == "wal"
    assert meter.spool.pragma("synchronous") == 2  # FULL


def test_threads_record_at_once(tmp_path: Path) -> None:
    meter = offline(tmp_path / "s.db")

    def work(n: int) -> None:
        for i in range(50):
            meter.record(f"cust-{n % 3}", "users", i, AT)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert meter.spool.aggregate(10**12) == 300
    assert {
        (r.customer.label, r.quantity, r.usage_events) for r in meter.records() if r.customer
    } == {(f"cust-{n}", Decimal(2 * 1225), 100) for n in range(3)}


WORKER = """
import sys
from datetime import UTC, datetime
from marketmeter.client import MeteringClient
meter = MeteringClient(sys.argv[1], "prod-x")
for i in range(40):
    meter.record("cust-" + sys.argv[2], "users", 1, datetime(2026, 11, 23, 11, 15, tzinfo=UTC))
"""


def test_processes_record_at_once(tmp_path: Path) -> None:
    spool = tmp_path / "s.db"
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(spool), str(n % 2)]) for n in range(4)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]
    meter = offline(spool)
    meter.spool.aggregate(10**12)
    assert sorted((r.customer.label, r.quantity) for r in meter.records() if r.customer) == [
        ("cust-0", Decimal(80)),
        ("cust-1", Decimal(80)),
    ]


@pytest.mark.parametrize(
    ("customer", "quantity", "at", "message"),
    [
        ("c", 1.5, AT, "int or a Decimal, not float"),
        ("c", True, AT, "int or a Decimal, not bool"),
        ("c", -1, AT, "not negative"),
        ("c", Decimal("0.0000001"), AT, "at most 6 decimal places"),
        ("c", Decimal("NaN"), AT, "finite"),
        ("c", 1, AT.replace(tzinfo=None), "timezone-aware"),
        (None, 1, AT, "needs a customer"),
        ("", 1, AT, "non-empty"),
    ],
)
def test_what_record_refuses(
    tmp_path: Path, customer: Any, quantity: Any, at: datetime, message: str
) -> None:
    meter = offline(tmp_path / "s.db")
    with pytest.raises(ValueError, match=message):
        meter.record(customer, "users", quantity, at)
    assert meter.status().unaggregated == 0


def test_customers_and_allocations_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of identifier and account_id"):
        Customer(identifier="a", account_id="444455556666")
    with pytest.raises(ValueError, match="exactly one of identifier and account_id"):
        Customer(license_arn="arn:x")
    meter = offline(tmp_path / "s.db")
    with pytest.raises(ValueError, match="add up to 3, not to the quantity 4"):
        meter.record("c", "users", 4, AT, allocations=[Allocation(3, {"a": "b"})])
    with pytest.raises(ValueError, match="customer must be None"):
        MeteringClient(tmp_path / "m.db", "prod-x", Mode.METER_USAGE).record("c", "d", 1, AT)


def test_aggregation_folds_until_the_record_is_first_sent(tmp_path: Path) -> None:
    meter = offline(tmp_path / "s.db")
    meter.record("c", "users", 1, AT)
    meter.spool.aggregate(10**12)
    meter.record("c", "users", 2, AT)  # not sent yet: folded into the same record
    meter.spool.aggregate(10**12)
    [record] = meter.records()
    assert (record.quantity, record.usage_events, record.state) == (
        Decimal(3),
        2,
        RecordState.PENDING,
    )
    meter.spool.mark_attempt([record.id])  # it may have reached AWS: frozen
    meter.record("c", "users", 4, AT)
    meter.record("c", "users", 5, AT)
    meter.spool.aggregate(10**12)
    assert [(r.quantity, r.state, r.attempts) for r in meter.records()] == [
        (Decimal(3), RecordState.PENDING, 1),
        (Decimal(9), RecordState.LATE, 0),
    ]


def test_an_integer_sum_too_large_fails_the_record(tmp_path: Path) -> None:
    meter = offline(tmp_path / "s.db")
    meter.record("c", "users", 2_000_000_000, AT)
    meter.record("c", "users", 2_000_000_000, AT)
    meter.spool.aggregate(10**12)
    [record] = meter.records()
    assert (record.state, record.error_code) == (RecordState.FAILED, "QuantityTooLarge")


def test_a_missing_or_foreign_file_is_not_a_spool(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="no spool at"):
        MeteringClient.open_existing(tmp_path / "nothing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(SpoolError, match="is not a spool"):
        MeteringClient.open_existing(junk)
    assert not (tmp_path / "nothing.db").exists()
