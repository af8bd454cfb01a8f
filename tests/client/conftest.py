"""Fixtures of the metering client's tests: a marketmeter bench with its clock frozen, a
``MeteringClient`` on a fresh spool pointed at it, and the ledger check every test ends with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketmeter.client import Backoff, MeteringClient, RecordState, make_aws_client
from marketmeter.testing.pytest_plugin import TEST_ACCESS_KEY, TEST_REGION, Marketmeter

PRODUCT = "demo-saas-legacy"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0)
FAST = Backoff(base=0.001, cap=0.01, max_attempts=8)

Key = tuple[str, str, datetime]  # customer, dimension, hour


@pytest.fixture
def bench(marketmeter: Marketmeter) -> Marketmeter:
    marketmeter.clock.set(NOW)
    return marketmeter


def aws_for(bench: Marketmeter, **options: Any) -> Any:
    options.setdefault("aws_access_key_id", TEST_ACCESS_KEY[0])
    options.setdefault("aws_secret_access_key", TEST_ACCESS_KEY[1])
    return make_aws_client(endpoint_url=bench.endpoint, region_name=TEST_REGION, **options)


@pytest.fixture
def make_meter(bench: Marketmeter, tmp_path: Path) -> Callable[..., MeteringClient]:
    """A client on ``tmp_path/spool.db`` (the same spool each call: a restart), on the
    service's clock, with fast backoff; keywords override."""

    def make(**options: Any) -> MeteringClient:
        options.setdefault("product_code", PRODUCT)
        options.setdefault("clock", bench.clock.now)
        options.setdefault("backoff", FAST)
        if "aws" not in options:
            options["aws"] = aws_for(bench)
        return MeteringClient(tmp_path / "spool.db", **options)

    return make


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ledger_by_key(bench: Marketmeter, product: str = PRODUCT) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for row in bench.usage(product=product, limit=100000):
        customer = row["customerIdentifier"] or row["customerAWSAccountId"]
        key = (customer, row["dimension"], datetime.fromisoformat(row["hour"]))
        assert key not in found, f"{key} billed twice"
        found[key] = row
    return found


def assert_billed_exactly_once(
    bench: Marketmeter,
    meter: MeteringClient,
    recorded: Iterable[tuple[str, str, Decimal | int, datetime]],
    product: str = PRODUCT,
    foreign: Iterable[Key] = (),
) -> dict[RecordState, Decimal]:
    """Every unit ``recorded`` (customer, dimension, quantity, at) is either in marketmeter's
    ledger exactly once, under the MeteringRecordId the spool holds, or in a reported record
    (duplicate, late, failed, expired); nothing is pending; the ledger holds nothing else
    (except the ``foreign`` keys billed by someone else). Answers the units per state."""
    expected: dict[Key, Decimal] = defaultdict(Decimal)
    for customer, dimension, quantity, at in recorded:
        expected[(customer, dimension, hour_of(at))] += Decimal(quantity)
    ledger = ledger_by_key(bench, product)
    for key in foreign:
        ledger.pop(key)
    accounted: dict[Key, Decimal] = defaultdict(Decimal)
    units: dict[RecordState, Decimal] = defaultdict(Decimal)
    sent_ids = {}
    for record in meter.records():
        assert record.customer is not None
        key = (record.customer.label, record.dimension, record.hour)
        assert record.state is not RecordState.PENDING, record
        accounted[key] += record.quantity
        units[record.state] += record.quantity
        if record.state is RecordState.SENT:
            sent_ids[key] = (record.metering_record_id, record.quantity)
    assert dict(accounted) == dict(expected)
    billed = {
        key: (row["meteringRecordId"], Decimal(str(row["quantity"]))) for key, row in ledger.items()
    }
    assert billed == sent_ids
    return dict(units)
