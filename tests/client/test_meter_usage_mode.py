"""MeterUsage mode (AMI and container products): one record per dimension and hour from each
instance, its answers stored, against marketmeter's ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from marketmeter.client import MeteringClient, Mode, RecordState
from marketmeter.testing.pytest_plugin import Marketmeter
from tests.client.conftest import FAST, HOUR, aws_for

BUYER_KEY = "AKIAMMDEMOBUYER00001"  # alice's key in the demo catalog


def instance(bench: Marketmeter, tmp_path: Path, name: str) -> MeteringClient:
    aws = aws_for(
        bench, aws_access_key_id=BUYER_KEY, aws_secret_access_key="x", aws_session_token=name
    )
    return MeteringClient(
        tmp_path / f"{name}.db",
        "demo-ami",
        Mode.METER_USAGE,
        aws,
        clock=bench.clock.now,
        backoff=FAST,
    )


def test_each_instance_meters_its_hours(bench: Marketmeter, tmp_path: Path) -> None:
    one = instance(bench, tmp_path, "i-0aaaaaaaaaaaaaaa1")
    two = instance(bench, tmp_path, "i-0bbbbbbbbbbbbbbb2")
    at = HOUR - timedelta(minutes=30)
    one.record(None, "vcpu_hours", 2, at)
    one.record(None, "vcpu_hours", 3, at - timedelta(hours=1))
    one.record(None, "vcpu_hours", 4, at)
    two.record(None, "vcpu_hours", Decimal("1.5"), at)
    bench.faults.throttle(operation="MeterUsage", times=2)
    assert one.flush().settled == {RecordState.SENT: 2}
    assert two.flush().settled == {RecordState.SENT: 1}
    ledger = {
        (row["instance"], row["hour"]): (row["quantity"], row["meteringRecordId"])
        for row in bench.usage(product="demo-ami")
    }
    ids = {r.metering_record_id for m in (one, two) for r in m.records()}
    assert {q for q, _ in ledger.values()} == {6, 3, 1.5}
    assert {i for _, i in ledger.values()} == ids
    assert sorted(ledger) == [
        ("i-0aaaaaaaaaaaaaaa1", "2026-11-23T10:00:00Z"),
        ("i-0aaaaaaaaaaaaaaa1", "2026-11-23T11:00:00Z"),
        ("i-0bbbbbbbbbbbbbbb2", "2026-11-23T11:00:00Z"),
    ]
    statuses = [c["status"] for c in bench.journal.entries(operation="MeterUsage")]
    assert statuses == [400, 400, 200, 200, 200]


def test_a_metered_hour_is_a_duplicate(bench: Marketmeter, tmp_path: Path) -> None:
    one = instance(bench, tmp_path, "i-0aaaaaaaaaaaaaaa1")
    at = HOUR - timedelta(minutes=30)
    one.aws.meter_usage(
        ProductCode="demo-ami", Timestamp=at, UsageDimension="vcpu_hours", UsageQuantity=9
    )
    one.record(None, "vcpu_hours", 2, at)
    one.record(None, "no_such_dimension", 1, at)
    assert one.flush().settled == {RecordState.DUPLICATE: 1, RecordState.FAILED: 1}
    assert {(r.dimension, r.error_code) for r in one.records()} == {
        ("vcpu_hours", "DuplicateRequestException"),
        ("no_such_dimension", "InvalidUsageDimensionException"),
    }
    assert [row["quantity"] for row in bench.usage(product="demo-ami")] == [9]
