"""The BatchMeterUsage rules (docs/batch-meter-usage.md), with an injected clock and ids, on a real
store of each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from marketmeter.errors import (
    AwsError,
    InvalidLicenseException,
    InvalidProductCodeException,
    InvalidTagException,
    InvalidUsageAllocationsException,
    InvalidUsageDimensionException,
    TimestampOutOfBoundsException,
    ValidationException,
)
from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.types import (
    BatchMeterUsageRequest,
    BatchMeterUsageResult,
    Caller,
    RecordStatus,
    Tag,
    UsageAllocation,
    UsageRecord,
)
from marketmeter.metering.windows import UsageWindow, WindowPolicy
from marketmeter.store.base import OperatorStore, UsageQuery

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
T = int(NOW.timestamp()) - 60  # a minute ago, inside the current hour
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"
CAROL_CA = "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000002"
ERIN_CA = "arn:aws:license-manager::333344445555:license:l-e0000000000000000000000000000002"
ALICE_OTHER = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009"


class Bench:
    """The operation wired to a fresh store, a fixed clock and sequential ids."""

    def __init__(self, store: OperatorStore, window: UsageWindow | None = None) -> None:
        self.store = store
        self.clock = FixedClock(NOW)
        self.ids = SequentialIds()
        self.window = window or UsageWindow()

    def meter(
        self,
        *records: UsageRecord,
        product: str | None = "prod-legacy",
        caller: Caller | None = None,
    ) -> BatchMeterUsageResult:
        operation = BatchMeterUsage(self.store, self.clock, self.ids, self.window)
        request = BatchMeterUsageRequest(tuple(records), product)
        return asyncio.run(operation(request, caller or Caller.anonymous()))

    def fails(self, error: type[AwsError], *records: UsageRecord, **kwargs: Any) -> str:
        with pytest.raises(error) as raised:
            self.meter(*records, **kwargs)
        assert self.billed() == [], "a refused batch must bill nothing"
        return raised.value.message

    def billed(self) -> list[tuple[str, str, str, Decimal]]:
        rows = self.store.usage_now(UsageQuery())
        return [(r.product_code, r.customer_aws_account_id, r.dimension, r.quantity) for r in rows]


@pytest.fixture
def bench(store: OperatorStore) -> Bench:
    return Bench(store)


def rec(
    customer: str = "cust-alice",
    dimension: str = "users",
    quantity: int | None = 1,
    timestamp: float = T,
    **extra: Any,
) -> UsageRecord:
    return UsageRecord(
        timestamp=timestamp,
        dimension=dimension,
        quantity=quantity,
        customer_identifier=customer,
        **extra,
    )


def by_account(account: str, **extra: Any) -> UsageRecord:
    fields: dict[str, Any] = {"timestamp": T, "dimension": "users", "quantity": 1}
    fields.update(extra)
    return UsageRecord(customer_aws_account_id=account, **fields)


def statuses(result: BatchMeterUsageResult) -> list[str]:
    return [r.status.value for r in result.results]


# --- per-record verdicts -----------------------------------------------------------------------


def test_success_bills_the_record_with_a_new_id(bench: Bench) -> None:
    result = bench.meter(rec(quantity=7))
    assert statuses(result) == ["Success"]
    assert result.results[0].metering_record_id == "00000000-0000-4000-8000-000000000001"
    assert result.results[0].record == rec(quantity=7)
    assert bench.billed() == [("prod-legacy", "444455556666", "users", Decimal(7))]


def test_one_batch_may_mix_whole_and_fractional_timestamps(
    bench: Bench, backend: str, request: pytest.FixtureRequest
) -> None:
    """Timestamps are kept as received (the JS SDK sends ``1795436940`` on a whole second and
    ``1795436940.5`` otherwise), so one batch may hold an ``int`` and a ``float``."""
    result = bench.meter(rec(timestamp=T), rec("cust-bob", timestamp=T + 0.5))
    assert statuses(result) == ["Success", "Success"]
    assert [r.metering_record_id for r in result.results] == [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    ]
    rows = bench.store.usage_now(UsageQuery())
    assert [(r.customer_aws_account_id, r.usage_timestamp) for r in rows] == [
        ("444455556666", T),
        ("777788889999", T + 0.5),
    ]


@pytest.mark.parametrize(
    ("customer", "why"),
    [
        ("cust-nobody", "unknown customer"),
        ("cust-dave", "no agreement with the product"),
        ("cust-carol", "suspended"),
        ("cust-erin", "agreement starts after the record"),
        ("cust-frank", "agreement ended before the record"),
        ("cust-grace", "unsubscribed"),
    ],
)
def test_customer_not_subscribed_is_not_billed(bench: Bench, customer: str, why: str) -> None:
    result = bench.meter(rec(customer=customer))
    assert statuses(result) == ["CustomerNotSubscribed"], why
    assert result.results[0].metering_record_id is None
    assert bench.billed() == []


def test_results_keep_request_order_and_mix_verdicts(bench: Bench) -> None:
    result = bench.meter(
        rec("cust-dave"),
        rec("cust-alice", quantity=2),
        rec("cust-bob"),
        rec("cust-alice", quantity=3),
    )
    assert statuses(result) == ["CustomerNotSubscribed", "Success", "Success", "DuplicateRecord"]
    assert [r.record.customer_identifier for r in result.results] == [
        "cust-dave",
        "cust-alice",
        "cust-bob",
        "cust-alice",
    ]
    assert bench.billed() == [
        ("prod-legacy", "444455556666", "users", Decimal(2)),
        ("prod-legacy", "777788889999", "users", Decimal(1)),
    ]


def test_identical_retry_returns_the_first_id_and_bills_once(bench: Bench) -> None:
    first = bench.meter(rec(quantity=5), rec("cust-bob"))
    retry = bench.meter(rec("cust-bob"), rec(quantity=5))  # a reordered retry
    assert statuses(retry) == ["Success", "Success"]
    assert retry.results[1].metering_record_id == first.results[0].metering_record_id
    assert retry.results[0].metering_record_id == first.results[1].metering_record_id
    assert len(bench.billed()) == 2


def test_same_key_with_another_quantity_is_a_duplicate_and_first_stays_billed(bench: Bench) -> None:
    bench.meter(rec(quantity=5))
    result = bench.meter(rec(quantity=6, timestamp=T - 600))  # same hour, other minute
    assert statuses(result) == ["DuplicateRecord"]
    assert result.results[0].metering_record_id is None
    assert bench.billed() == [("prod-legacy", "444455556666", "users", Decimal(5))]


def test_records_are_never_aggregated_other_hour_or_dimension_is_a_new_key(bench: Bench) -> None:
    result = bench.meter(rec(), rec(timestamp=T - 3600), rec(dimension="api_calls"))
    assert statuses(result) == ["Success"] * 3
    assert len({r.metering_record_id for r in result.results}) == 3


def test_account_id_and_customer_identifier_of_one_buyer_share_the_product_key(
    bench: Bench,
) -> None:
    first = bench.meter(rec(quantity=4))
    again = bench.meter(by_account("444455556666", quantity=4))
    other = bench.meter(by_account("444455556666", quantity=9))
    assert again.results[0].metering_record_id == first.results[0].metering_record_id
    assert statuses(other) == ["DuplicateRecord"]


def test_license_key_dedupes_independently_of_the_product_key(bench: Bench) -> None:
    by_product = bench.meter(by_account("444455556666", dimension="requests"), product="prod-ca")
    by_license = bench.meter(
        by_account("444455556666", dimension="requests", license_arn=ALICE_CA), product="prod-ca"
    )
    assert statuses(by_product) == statuses(by_license) == ["Success"]
    assert by_product.results[0].metering_record_id != by_license.results[0].metering_record_id
    retry = bench.meter(
        by_account("444455556666", dimension="requests", license_arn=ALICE_CA, quantity=2),
        product="prod-ca",
    )
    assert statuses(retry) == ["DuplicateRecord"]


def test_without_product_code_the_product_comes_from_the_licenses(bench: Bench) -> None:
    result = bench.meter(
        by_account("444455556666", dimension="requests", license_arn=ALICE_CA),
        by_account("777788889999", dimension="requests", license_arn=BOB_CA),
        product=None,
    )
    assert statuses(result) == ["Success", "Success"]
    assert {row[0] for row in bench.billed()} == {"prod-ca"}


def test_suspended_license_is_customer_not_subscribed(bench: Bench) -> None:
    result = bench.meter(
        by_account("222233334444", dimension="requests", license_arn=CAROL_CA), product="prod-ca"
    )
    assert statuses(result) == ["CustomerNotSubscribed"]


def test_missing_quantity_bills_zero_and_is_echoed_absent(bench: Bench) -> None:
    result = bench.meter(rec(quantity=None))
    assert result.results[0].record.quantity is None
    assert bench.billed() == [("prod-legacy", "444455556666", "users", Decimal(0))]


def test_an_empty_batch_answers_empty_results(bench: Bench) -> None:
    assert bench.meter().results == ()
    assert bench.meter(product=None).results == ()


@pytest.mark.parametrize("product", ["no-such-product", "prod-ami"])
def test_an_empty_batch_still_names_a_valid_product(bench: Bench, product: str) -> None:
    """A seller's start-up check (zero records, to try the product code and credentials) must
    fail on a wrong code as a batch with records would."""
    message = bench.fails(InvalidProductCodeException, product=product)
    assert message == f"Product code '{product}' is not a valid SaaS product."


def test_an_empty_batch_of_another_sellers_product_is_invalid(bench: Bench) -> None:
    seller = Caller("seller", "111122223333", "AKIATESTSELLER000001")
    message = bench.fails(InvalidProductCodeException, product="prod-other", caller=seller)
    assert message == "Product code 'prod-other' is not a valid SaaS product."


# --- whole-request failures ------------------------------------------------------------------


def test_both_customer_identities_is_a_validation_error(bench: Bench) -> None:
    message = bench.fails(ValidationException, rec(customer_aws_account_id="444455556666"))
    assert message == (
        "1 validation error detected: usageRecords.1.member has both of customerIdentifier and "
        "customerAWSAccountId: exactly one must be specified"
    )


def test_neither_customer_identity_is_a_validation_error(bench: Bench) -> None:
    message = bench.fails(
        ValidationException, rec(), UsageRecord(timestamp=T, dimension="users", quantity=1)
    )
    assert "usageRecords.2.member has neither" in message


@pytest.mark.parametrize("product", ["no-such-product", "prod-ami"])
def test_unknown_or_non_saas_product_is_invalid(bench: Bench, product: str) -> None:
    message = bench.fails(InvalidProductCodeException, rec(), product=product)
    assert message == f"Product code '{product}' is not a valid SaaS product."


def test_another_sellers_product_is_invalid_for_a_seller_caller(bench: Bench) -> None:
    seller = Caller("seller", "111122223333", "AKIATESTSELLER000001")
    bench.fails(InvalidProductCodeException, rec(), product="prod-other", caller=seller)
    owner = Caller("seller", "999988887777", None)
    assert statuses(bench.meter(rec(), product="prod-other", caller=owner)) == ["Success"]


def test_no_product_code_needs_a_license_on_every_record(bench: Bench) -> None:
    message = bench.fails(InvalidProductCodeException, rec(), product=None)
    assert message == "A ProductCode is required unless every usage record carries a LicenseArn."


def test_dimensions_are_case_sensitive(bench: Bench) -> None:
    message = bench.fails(InvalidUsageDimensionException, rec(), rec(dimension="Users"))
    assert message == "Dimension 'Users' is not a usage dimension of product 'prod-legacy'."


@pytest.mark.parametrize(
    ("license_arn", "product", "expected"),
    [
        ("arn:aws:iam::123456789012:role/x", "prod-ca", "is not a valid license ARN"),
        (
            "arn:aws:license-manager::444455556666:license:l-ffffffffffffffffffffffffffffffff",
            "prod-ca",
            "does not exist",
        ),
        (BOB_CA, "prod-ca", "does not belong to the record's customer"),
        (ALICE_LEGACY, "prod-ca", "does not belong to product 'prod-ca'"),
        (ERIN_CA, "prod-ca", "is not active at the record's timestamp"),
    ],
)
def test_invalid_licenses(bench: Bench, license_arn: str, product: str, expected: str) -> None:
    account = license_arn.split(":")[4] if license_arn == ERIN_CA else "444455556666"
    record = by_account(account, dimension="requests", license_arn=license_arn)
    message = bench.fails(InvalidLicenseException, record, product=product)
    assert expected in message


def test_licenses_of_two_products_in_one_batch(bench: Bench) -> None:
    message = bench.fails(
        InvalidLicenseException,
        by_account("444455556666", dimension="users", license_arn=ALICE_OTHER),
        by_account("444455556666", dimension="requests", license_arn=ALICE_CA),
        product=None,
    )
    assert message.startswith("The LicenseArns of one request must all belong to one product")


# --- the time window ---------------------------------------------------------------------------


def test_six_hours_old_is_refused_and_the_whole_batch_is_not_processed(bench: Bench) -> None:
    six_hours_ago = NOW.timestamp() - 6 * 3600
    message = bench.fails(
        TimestampOutOfBoundsException, rec(), rec("cust-bob", timestamp=six_hours_ago)
    )
    assert message.startswith(f"The timestamp of usageRecords.2 ({six_hours_ago}) is out of")


def test_just_under_six_hours_old_is_accepted(bench: Bench) -> None:
    result = bench.meter(rec(timestamp=NOW.timestamp() - 6 * 3600 + 1))
    assert statuses(result) == ["Success"]


def test_future_skew_is_five_minutes(bench: Bench) -> None:
    bench.fails(TimestampOutOfBoundsException, rec(timestamp=NOW.timestamp() + 301))
    assert statuses(bench.meter(rec(timestamp=NOW.timestamp() + 300))) == ["Success"]


def test_absurd_timestamps_are_out_of_bounds_not_errors(bench: Bench) -> None:
    bench.fails(TimestampOutOfBoundsException, rec(timestamp=1e300))
    bench.fails(TimestampOutOfBoundsException, rec(timestamp=-1e300))


def test_window_follows_the_injected_clock(bench: Bench) -> None:
    bench.clock.advance(timedelta(hours=7))
    bench.fails(TimestampOutOfBoundsException, rec())


def test_24h_month_end_window(store: OperatorStore) -> None:
    bench = Bench(store, UsageWindow(WindowPolicy.AWS_24H_MONTH_END))
    bench.clock.set(datetime(2026, 12, 1, 5, 59, 59, tzinfo=UTC))
    november = datetime(2026, 11, 30, 20, 0, tzinfo=UTC).timestamp()
    assert statuses(bench.meter(rec(timestamp=november))) == ["Success"]
    bench.clock.set(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    with pytest.raises(TimestampOutOfBoundsException):
        bench.meter(rec("cust-bob", timestamp=november))
    bench.clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    twenty_hours_ago = datetime(2026, 11, 30, 3, 0, tzinfo=UTC).timestamp()
    assert statuses(bench.meter(rec("cust-bob", timestamp=twenty_hours_ago))) == ["Success"]
    with pytest.raises(TimestampOutOfBoundsException):
        bench.meter(rec("cust-bob", timestamp=twenty_hours_ago - 4 * 3600))


# --- allocations and tags ----------------------------------------------------------------------


def alloc(quantity: int, *tags: tuple[str, str]) -> UsageAllocation:
    return UsageAllocation(quantity, tuple(Tag(k, v) for k, v in tags) if tags else None)


def test_allocations_that_add_up_are_billed(bench: Bench) -> None:
    allocations = (alloc(3, ("team", "a")), alloc(4, ("team", "b")), alloc(1))
    result = bench.meter(rec(quantity=8, allocations=allocations))
    assert statuses(result) == ["Success"]
    stored = bench.store.usage_now(UsageQuery())[0].allocations
    assert stored == [
        {"quantity": 3, "tags": [{"key": "team", "value": "a"}]},
        {"quantity": 4, "tags": [{"key": "team", "value": "b"}]},
        {"quantity": 1, "tags": []},
    ]


@pytest.mark.parametrize(
    ("allocations", "error", "expected"),
    [
        (
            (alloc(3, ("t", "a")), alloc(4, ("t", "b"))),
            InvalidUsageAllocationsException,
            "The sum of allocated usage quantities (7) is not equal to the usage quantity (8).",
        ),
        (
            (alloc(4, ("t", "a")), alloc(4, ("t", "a"))),
            InvalidUsageAllocationsException,
            "Each usage allocation must have a unique set of tags.",
        ),
        (
            (alloc(4), alloc(4)),
            InvalidUsageAllocationsException,
            "At most one usage allocation may have no tags.",
        ),
        (
            (alloc(8, ("t", "a"), ("t", "b")),),
            InvalidTagException,
            "A usage allocation has the same tag key more than once.",
        ),
        (
            (
                alloc(4, ("a", "1"), ("b", "1"), ("c", "1")),
                alloc(4, ("d", "1"), ("e", "1"), ("f", "1")),
            ),
            InvalidTagException,
            "A usage record's allocations use 6 distinct tag keys; the limit is 5.",
        ),
    ],
)
def test_allocation_rules(
    bench: Bench, allocations: tuple[UsageAllocation, ...], error: type[AwsError], expected: str
) -> None:
    assert bench.fails(error, rec(quantity=8, allocations=allocations)) == expected


def test_statuses_are_the_models_enum() -> None:
    from marketmeter.servicemodel.spec import service_model

    assert [s.value for s in RecordStatus] == service_model().shape_for(
        "UsageRecordResultStatus"
    ).enum


# --- fractional quantities (QuantityAsDecimal, botocore ≥ 1.44.1) ------------------------------


def dec(value: str, **extra: Any) -> UsageRecord:
    return rec(quantity=None, quantity_decimal=value, **extra)


def test_a_decimal_quantity_is_billed_exactly(bench: Bench) -> None:
    result = bench.meter(dec("17.420001"))
    assert statuses(result) == ["Success"]
    assert result.results[0].record.quantity_decimal == "17.420001"
    (row,) = bench.store.usage_now(UsageQuery())
    assert row.quantity == Decimal("17.420001")


def test_quantities_are_compared_by_value_across_both_forms(bench: Bench) -> None:
    first = bench.meter(rec(quantity=17))
    same = bench.meter(dec("17.00"), dec("17.0"))
    other = bench.meter(dec("17.000001"))
    assert [r.metering_record_id for r in same.results] == [first.results[0].metering_record_id] * 2
    assert statuses(other) == ["DuplicateRecord"]
    assert bench.billed() == [("prod-legacy", "444455556666", "users", Decimal(17))]


def test_both_quantity_forms_is_a_validation_error(bench: Bench) -> None:
    message = bench.fails(ValidationException, rec(quantity=3, quantity_decimal="3"))
    assert message == (
        "1 validation error detected: usageRecords.1.member has both quantity and "
        "quantityAsDecimal: at most one may be specified"
    )


def dalloc(value: str, *tags: tuple[str, str]) -> UsageAllocation:
    return UsageAllocation(None, tuple(Tag(k, v) for k, v in tags) or None, value)


def test_decimal_allocations_add_up_by_value(bench: Bench) -> None:
    allocations = (dalloc("0.25", ("t", "a")), dalloc("1.75", ("t", "b")))
    assert statuses(bench.meter(dec("2.000", allocations=allocations))) == ["Success"]
    stored = bench.store.usage_now(UsageQuery())[0].allocations
    assert stored == [
        {"quantity": 0.25, "tags": [{"key": "t", "value": "a"}]},
        {"quantity": 1.75, "tags": [{"key": "t", "value": "b"}]},
    ]


@pytest.mark.parametrize(
    ("record", "error", "expected"),
    [
        (
            dec("2.5", allocations=(dalloc("1", ("t", "a")), dalloc("1", ("t", "b")))),
            InvalidUsageAllocationsException,
            "The sum of allocated usage quantities (2) is not equal to the usage quantity (2.5).",
        ),
        (
            dec("2", allocations=(alloc(2, ("t", "a")),)),
            InvalidUsageAllocationsException,
            "Every usage allocation must use AllocatedUsageQuantityAsDecimal, like the usage "
            "quantity.",
        ),
        (
            rec(quantity=2, allocations=(dalloc("2", ("t", "a")),)),
            InvalidUsageAllocationsException,
            "Every usage allocation must use AllocatedUsageQuantity, like the usage quantity.",
        ),
        (
            rec(quantity=2, allocations=(UsageAllocation(None, None, None),)),
            ValidationException,
            "1 validation error detected: usageRecords.1.member.usageAllocations.1.member must "
            "specify exactly one of allocatedUsageQuantity and allocatedUsageQuantityAsDecimal",
        ),
    ],
)
def test_decimal_allocation_rules(
    bench: Bench, record: UsageRecord, error: type[AwsError], expected: str
) -> None:
    assert bench.fails(error, record) == expected
