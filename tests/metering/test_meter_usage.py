"""The MeterUsage rules (docs/meter-usage.md), in process: the rule class on a real ledger of
each backend (SQLite, PostgreSQL) loaded with ``tests/data/catalog.yaml``, a fixed clock and
sequential ids.

Covers the check order, hourly deduplication per (product, instance, dimension, hour),
per-request metering by ClientToken, DryRun, entitlement of the calling buyer, allocations and
tags, the time window (and its setting) and the ledger row a call leaves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketmeter.catalog.model import Agreement, AgreementState, Catalog, Product, ProductKind
from marketmeter.config import DryRunAnswer, Settings
from marketmeter.errors import (
    AwsError,
    CustomerNotEntitledException,
    DryRunOperation,
    DuplicateRequestException,
    IdempotencyConflictException,
    InvalidProductCodeException,
    InvalidTagException,
    InvalidUsageAllocationsException,
    InvalidUsageDimensionException,
    TimestampOutOfBoundsException,
    ValidationException,
)
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.meter_usage import DRY_RUN_RECORD_ID, MeterUsage
from marketmeter.metering.types import Caller, MeterUsageRequest, Tag, UsageAllocation
from marketmeter.metering.windows import UsageWindow
from marketmeter.store.base import BilledRecord, OperatorStore, UsageQuery

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
EPOCH = 1795437000  # NOW in epoch seconds
HOUR = 1795435200  # 2026-11-23T12:00:00Z, the hour NOW falls in
T = EPOCH - 60  # 12:29:00, inside the current hour
ALICE = "444455556666"
ALICE_KEY = "AKIATESTALICE0000001"
ALICE_AMI = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
ALICE_AGENT = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000004"
ALICE_CONTAINER = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000005"
DAVE = "555566667777"
DAVE_KEY = "AKIATESTDAVE00000001"
DAVE_AMI = "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000003"
DAVE_AGENT = "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000004"
DAVE_CONTAINER = "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000005"
DRY_RUN = "Request would have succeeded, but DryRun flag is set."
CONFLICT = "ClientToken 'tok-1' was already used with different parameters."
OUT_OF_WINDOW = (
    "The timestamp ({}) is out of the allowed range: usage must be less than 6 hours in the "
    "past and no more than 5 minutes in the future."
)
NO_BUYER = (
    "MeterUsage must be signed with a buyer's credentials; {} belongs to no buyer of the "
    "catalog (list the key under the buyer's access_keys)."
)


def rid(n: int) -> str:
    """The n-th id of ``SequentialIds``."""
    return f"00000000-0000-4000-8000-{n:012d}"


def alice(session: str | None = "i-0aaa") -> Caller:
    return Caller.anonymous(ALICE_KEY, session)


def ami(**fields: object) -> MeterUsageRequest:
    """A MeterUsage of the hourly AMI product (fields override the defaults)."""
    values: dict[str, object] = {
        "product_code": "prod-ami",
        "timestamp": T,
        "dimension": "vcpu_hours",
        "quantity": 1,
    }
    values.update(fields)
    return MeterUsageRequest(**values)  # type: ignore[arg-type]


def agent(token: str | None = "tok-1", **fields: object) -> MeterUsageRequest:
    """A MeterUsage of the per-request product ``prod-agent``."""
    values: dict[str, object] = {
        "product_code": "prod-agent",
        "timestamp": T,
        "dimension": "invocations",
        "quantity": 1,
        "client_token": token,
    }
    values.update(fields)
    return MeterUsageRequest(**values)  # type: ignore[arg-type]


def tagged(
    quantity: int | None, *tags: tuple[str, str], decimal: str | None = None
) -> UsageAllocation:
    return UsageAllocation(
        quantity, tuple(Tag(k, v) for k, v in tags) if tags else None, quantity_decimal=decimal
    )


class Bench:
    """MeterUsage wired to the store, a clock fixed at NOW and sequential ids."""

    def __init__(self, store: OperatorStore, window: UsageWindow | None = None) -> None:
        self.store = store
        self.clock = FixedClock(NOW)
        self.ids = SequentialIds()
        self.operation = MeterUsage(
            store, self.clock, self.ids, window or Settings().meter_usage_window
        )

    def meter(self, request: MeterUsageRequest, caller: Caller | None = None) -> str:
        result = asyncio.run(self.operation(request, caller or alice()))
        return result.metering_record_id

    def fails(
        self, error: type[AwsError], request: MeterUsageRequest, caller: Caller | None = None
    ) -> AwsError:
        before = self.billed()
        with pytest.raises(error) as raised:
            self.meter(request, caller)
        assert type(raised.value) is error
        assert raised.value.code == error.__name__
        assert self.billed() == before, "a refused call must bill nothing"
        return raised.value

    def billed(self) -> list[BilledRecord]:
        return asyncio.run(self.store.usage(UsageQuery()))

    def agree(self, *agreements: Agreement) -> None:
        """Apply a catalog change holding these agreements."""
        self.store.apply_catalog_now(Catalog(agreements=agreements))


@pytest.fixture
def bench(store: OperatorStore) -> Bench:
    return Bench(store)


# --- check order -------------------------------------------------------------------------------


def test_checks_run_in_the_documented_order(bench: Bench) -> None:
    """Each step fixes the input the previous error was about; the next check then speaks."""
    stranger = Caller.anonymous("AKIASTRANGER00000001")
    request = MeterUsageRequest(
        product_code="no-such-product",
        timestamp=EPOCH - 7 * 3600,
        dimension="nope",
        quantity=10,
        quantity_decimal="10",
        allocations=(tagged(3),),
    )
    steps: list[tuple[dict[str, object], Caller, type[AwsError]]] = [
        ({}, stranger, ValidationException),
        ({"quantity_decimal": None}, stranger, InvalidProductCodeException),
        ({"product_code": "prod-agent"}, stranger, InvalidUsageDimensionException),
        ({"dimension": "invocations"}, stranger, TimestampOutOfBoundsException),
        ({"timestamp": T}, stranger, InvalidUsageAllocationsException),
        ({"allocations": (tagged(10),)}, stranger, CustomerNotEntitledException),
        ({}, alice(), ValidationException),  # per-request product: no ClientToken
    ]
    for change, caller, error in steps:
        request = dataclasses.replace(request, **change)  # type: ignore[arg-type]
        bench.fails(error, request, caller)
    assert bench.meter(dataclasses.replace(request, client_token="tok-1")) == rid(1)


def test_both_quantity_forms_is_a_validation_error(bench: Bench) -> None:
    error = bench.fails(ValidationException, ami(quantity=1, quantity_decimal="1"))
    assert error.message == (
        "1 validation error detected: The request has both usageQuantity and "
        "usageQuantityAsDecimal: at most one may be specified"
    )


def test_validation_errors_are_counted_and_joined(bench: Bench) -> None:
    request = ami(
        quantity=2,
        quantity_decimal="2",
        allocations=(tagged(1, ("a", "1"), decimal="1"), tagged(None)),
    )
    error = bench.fails(ValidationException, request)
    assert error.message == (
        "3 validation errors detected: The request has both usageQuantity and "
        "usageQuantityAsDecimal: at most one may be specified; usageAllocations.1.member must "
        "specify exactly one of allocatedUsageQuantity and allocatedUsageQuantityAsDecimal; "
        "usageAllocations.2.member must specify exactly one of allocatedUsageQuantity and "
        "allocatedUsageQuantityAsDecimal"
    )


def test_unknown_product_is_reported_before_an_unknown_caller(bench: Bench) -> None:
    error = bench.fails(
        InvalidProductCodeException,
        ami(product_code="no-such-product", dimension="nope", timestamp=0),
        Caller.anonymous("AKIASTRANGER00000001"),
    )
    assert (
        error.message == "Product code 'no-such-product' is not a valid AMI or container product."
    )


@pytest.mark.parametrize("code", ["prod-legacy", "prod-ca", "prod-other"])
def test_saas_products_are_not_metered_by_meter_usage(bench: Bench, code: str) -> None:
    error = bench.fails(InvalidProductCodeException, ami(product_code=code, dimension="users"))
    assert error.message == f"Product code '{code}' is not a valid AMI or container product."


@pytest.mark.parametrize("dimension", ["VCPU_HOURS", "tasks", ""])
def test_dimension_must_belong_to_the_product_case_sensitively(
    bench: Bench, dimension: str
) -> None:
    error = bench.fails(InvalidUsageDimensionException, ami(dimension=dimension, timestamp=0))
    assert error.message == (
        f"Dimension '{dimension}' is not a usage dimension of product 'prod-ami'."
    )


def test_per_request_product_without_client_token_is_a_validation_error(bench: Bench) -> None:
    error = bench.fails(ValidationException, agent(token=None))
    assert error.message == (
        "1 validation error detected: Product 'prod-agent' is metered per request: "
        "a clientToken is required"
    )


def test_an_unentitled_caller_is_reported_before_the_missing_client_token(bench: Bench) -> None:
    error = bench.fails(CustomerNotEntitledException, agent(token=None), Caller.anonymous(DAVE_KEY))
    assert error.message == (
        f"Customer {DAVE} is not entitled to product 'prod-agent' at the usage timestamp ({T})."
    )


# --- the billed row ------------------------------------------------------------------------------


def test_success_bills_one_meter_usage_row(bench: Bench) -> None:
    assert bench.meter(ami(quantity=3)) == rid(1)
    assert bench.billed() == [
        BilledRecord(
            metering_record_id=rid(1),
            product_code="prod-ami",
            customer_aws_account_id=ALICE,
            customer_identifier="cust-alice",
            license_arn=ALICE_AMI,
            dimension="vcpu_hours",
            quantity=Decimal(3),
            usage_timestamp=T,
            hour=HOUR,
            allocations=None,
            received_at=EPOCH,
            operation="MeterUsage",
            instance="i-0aaa",
        )
    ]


def test_container_products_are_metered_too(bench: Bench) -> None:
    request = ami(product_code="prod-container", dimension="tasks", quantity=4)
    assert bench.meter(request, alice("task/3f9c")) == rid(1)
    [row] = bench.billed()
    assert (row.product_code, row.license_arn, row.instance, row.quantity) == (
        "prod-container",
        ALICE_CONTAINER,
        "task/3f9c",
        Decimal(4),
    )


def test_without_session_token_the_instance_is_the_access_key(bench: Bench) -> None:
    bench.meter(ami(), alice(None))
    assert [row.instance for row in bench.billed()] == [ALICE_KEY]


def test_a_long_session_token_is_hashed_into_the_instance(bench: Bench) -> None:
    token = "FwoGZXIvYXdzE" + "x" * 200
    bench.meter(ami(), alice(token))
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert [row.instance for row in bench.billed()] == [f"sha256:{digest}"]


def test_a_128_character_session_token_is_kept_as_is(bench: Bench) -> None:
    token = "s" * 128
    bench.meter(ami(), alice(token))
    assert [row.instance for row in bench.billed()] == [token]


def test_strict_auth_buyer_caller_is_accepted(bench: Bench) -> None:
    caller = Caller("buyer", ALICE, "AKIANOTINCATALOG0001", "i-0bbb")
    assert bench.meter(ami(), caller) == rid(1)
    assert [(r.customer_aws_account_id, r.instance) for r in bench.billed()] == [(ALICE, "i-0bbb")]


def test_missing_quantity_bills_zero_and_equals_zero(bench: Bench) -> None:
    first = bench.meter(ami(quantity=None))
    assert bench.meter(ami(quantity=0)) == first
    assert [row.quantity for row in bench.billed()] == [Decimal(0)]


# --- hourly deduplication ----------------------------------------------------------------------


def test_same_quantity_again_returns_the_first_id(bench: Bench) -> None:
    first = bench.meter(ami(quantity=17))
    assert bench.meter(ami(quantity=17)) == first == rid(1)
    assert bench.meter(ami(quantity=None, quantity_decimal="17.000")) == first
    assert [(r.metering_record_id, r.quantity) for r in bench.billed()] == [(rid(1), Decimal(17))]


def test_a_decimal_quantity_then_its_integer_form_is_the_same_record(bench: Bench) -> None:
    first = bench.meter(ami(quantity=None, quantity_decimal="5.0"))
    assert bench.meter(ami(quantity=5)) == first
    assert len(bench.billed()) == 1


def test_another_quantity_in_the_same_hour_is_a_duplicate_request(bench: Bench) -> None:
    bench.meter(ami(quantity=17))
    error = bench.fails(DuplicateRequestException, ami(quantity=18, timestamp=HOUR))
    assert error.http_status == 400
    assert error.message == (
        "A metering record for product 'prod-ami', dimension 'vcpu_hours' and the hour starting "
        "2026-11-23T12:00:00Z was already sent from this instance with a different quantity."
    )
    bench.fails(DuplicateRequestException, ami(quantity=None, quantity_decimal="17.5"))
    assert [r.quantity for r in bench.billed()] == [Decimal(17)]


def test_duplicate_message_names_the_hour_of_the_timestamp(bench: Bench) -> None:
    bench.meter(ami(quantity=1, timestamp=HOUR - 1))
    error = bench.fails(DuplicateRequestException, ami(quantity=2, timestamp=HOUR - 3600))
    assert "the hour starting 2026-11-23T11:00:00Z was already sent" in error.message


def test_timestamps_within_one_hour_floor_to_one_key(bench: Bench) -> None:
    first = bench.meter(ami(timestamp=HOUR))
    assert bench.meter(ami(timestamp=HOUR + 0.5)) == first
    assert bench.meter(ami(timestamp=EPOCH + 299)) == first  # 12:34:59, still the 12:00 hour
    assert bench.meter(ami(timestamp=T)) == first
    assert [r.metering_record_id for r in bench.billed()] == [first]


def test_another_session_token_is_another_instance_and_a_new_record(bench: Bench) -> None:
    assert bench.meter(ami(quantity=1), alice("i-0aaa")) == rid(1)
    assert bench.meter(ami(quantity=2), alice("i-0bbb")) == rid(2)
    assert bench.meter(ami(quantity=2), alice("i-0bbb")) == rid(2)
    assert [(r.instance, r.quantity) for r in bench.billed()] == [
        ("i-0aaa", Decimal(1)),
        ("i-0bbb", Decimal(2)),
    ]


def test_the_next_hour_is_a_new_record(bench: Bench) -> None:
    earlier = bench.meter(ami(quantity=1, timestamp=HOUR - 1))
    later = bench.meter(ami(quantity=2, timestamp=HOUR))
    assert (earlier, later) == (rid(1), rid(2))
    assert [(r.hour, r.quantity) for r in bench.billed()] == [
        (HOUR - 3600, Decimal(1)),
        (HOUR, Decimal(2)),
    ]


def test_client_token_does_not_change_the_hourly_rule(bench: Bench) -> None:
    first = bench.meter(ami(quantity=3, client_token="a"))
    assert bench.meter(ami(quantity=3, client_token="b")) == first
    bench.fails(DuplicateRequestException, ami(quantity=4, client_token="c"))
    assert len(bench.billed()) == 1


def test_two_buyers_with_the_same_session_token_are_separate(bench: Bench) -> None:
    bench.agree(Agreement(DAVE_AMI, DAVE, "prod-ami", starts_at=0))
    assert bench.meter(ami(quantity=1), alice("shared")) == rid(1)
    assert bench.meter(ami(quantity=2), Caller.anonymous(DAVE_KEY, "shared")) == rid(2)
    assert [(r.customer_aws_account_id, r.license_arn) for r in bench.billed()] == [
        (ALICE, ALICE_AMI),
        (DAVE, DAVE_AMI),
    ]


# --- per-request metering (ClientToken) -----------------------------------------------------


def test_same_token_same_parameters_returns_the_first_id(bench: Bench) -> None:
    first = bench.meter(agent(quantity=17))
    assert first == rid(1)
    assert bench.meter(agent(quantity=17)) == first
    assert bench.meter(agent(quantity=None, quantity_decimal="17.000")) == first
    assert bench.meter(agent(quantity=17, timestamp=float(T))) == first
    assert bench.meter(agent(quantity=17), alice("i-0other")) == first  # token is per account
    [row] = bench.billed()
    assert (row.metering_record_id, row.product_code, row.license_arn, row.operation) == (
        rid(1),
        "prod-agent",
        ALICE_AGENT,
        "MeterUsage",
    )


ALLOCATED = agent(quantity=3, allocations=(tagged(1, ("team", "a")), tagged(2)))


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(
            dataclasses.replace(
                ALLOCATED, quantity=4, allocations=(tagged(2, ("team", "a")), tagged(2))
            ),
            id="quantity",
        ),
        pytest.param(dataclasses.replace(ALLOCATED, timestamp=T - 1), id="timestamp"),
        pytest.param(dataclasses.replace(ALLOCATED, allocations=None), id="no-allocations"),
        pytest.param(
            dataclasses.replace(ALLOCATED, allocations=(tagged(1, ("team", "b")), tagged(2))),
            id="allocation-tags",
        ),
        pytest.param(
            dataclasses.replace(ALLOCATED, allocations=(tagged(2, ("team", "a")), tagged(1))),
            id="allocation-split",
        ),
    ],
)
def test_same_token_other_parameters_is_an_idempotency_conflict(
    bench: Bench, changed: MeterUsageRequest
) -> None:
    assert bench.meter(ALLOCATED) == rid(1)
    error = bench.fails(IdempotencyConflictException, changed)
    assert error.http_status == 409
    assert error.message == CONFLICT
    assert [r.metering_record_id for r in bench.billed()] == [rid(1)]


def test_same_token_other_dimension_is_an_idempotency_conflict(bench: Bench) -> None:
    bench.store.apply_catalog_now(
        Catalog(
            products=(
                Product(
                    "prod-agent",
                    "111122223333",
                    ProductKind.AMI,
                    ("invocations", "tokens"),
                    per_request_metering=True,
                ),
            )
        )
    )
    bench.meter(agent())
    error = bench.fails(IdempotencyConflictException, agent(dimension="tokens"))
    assert (error.http_status, error.message) == (409, CONFLICT)
    assert bench.meter(agent(token="tok-2", dimension="tokens")) == rid(3)


def test_two_tokens_in_the_same_hour_bill_twice(bench: Bench) -> None:
    assert bench.meter(agent(token="tok-1", quantity=5)) == rid(1)
    assert bench.meter(agent(token="tok-2", quantity=5)) == rid(2)
    assert [(r.metering_record_id, r.hour, r.quantity) for r in bench.billed()] == [
        (rid(1), HOUR, Decimal(5)),
        (rid(2), HOUR, Decimal(5)),
    ]


def test_the_same_token_of_another_buyer_account_is_independent(bench: Bench) -> None:
    bench.agree(Agreement(DAVE_AGENT, DAVE, "prod-agent", starts_at=0))
    assert bench.meter(agent(quantity=1)) == rid(1)
    assert bench.meter(agent(quantity=9), Caller.anonymous(DAVE_KEY, "i-0aaa")) == rid(2)
    assert bench.meter(agent(quantity=1)) == rid(1)
    assert [(r.customer_aws_account_id, r.quantity) for r in bench.billed()] == [
        (ALICE, Decimal(1)),
        (DAVE, Decimal(9)),
    ]


# --- DryRun ----------------------------------------------------------------------------------


def test_dry_run_that_would_succeed_answers_200_with_the_dry_run_record_id(bench: Bench) -> None:
    """AWS answers HTTP 200 {"MeteringRecordId": "DryRunOperation"} (cloudquery/plugin-sdk
    #1966; aws-samples/aws-marketplace-metered-container-product)."""
    assert bench.meter(ami(dry_run=True)) == "DryRunOperation" == DRY_RUN_RECORD_ID
    assert bench.billed() == []
    # nothing was recorded and the hour is not used up: the real call may use any quantity
    assert bench.meter(ami(quantity=7)) == rid(2)
    assert [r.quantity for r in bench.billed()] == [Decimal(7)]


def test_dry_run_after_a_billed_record(bench: Bench) -> None:
    first = bench.meter(ami(quantity=5))
    assert bench.meter(ami(quantity=5, dry_run=True)) == DRY_RUN_RECORD_ID
    assert (
        bench.meter(ami(quantity=None, quantity_decimal="5.00", dry_run=True)) == "DryRunOperation"
    )
    error = bench.fails(DuplicateRequestException, ami(quantity=6, dry_run=True))
    assert "was already sent from this instance with a different quantity" in error.message
    assert bench.meter(ami(quantity=6, dry_run=True), alice("i-0new")) == DRY_RUN_RECORD_ID
    assert [r.metering_record_id for r in bench.billed()] == [first]


def test_dry_run_runs_every_check(bench: Bench) -> None:
    bench.fails(CustomerNotEntitledException, ami(dry_run=True), Caller.anonymous(DAVE_KEY))
    bench.fails(TimestampOutOfBoundsException, ami(dry_run=True, timestamp=EPOCH - 21600))
    bench.fails(InvalidProductCodeException, ami(dry_run=True, product_code="prod-legacy"))
    bench.fails(InvalidUsageDimensionException, ami(dry_run=True, dimension="VCPU_HOURS"))
    bench.fails(ValidationException, agent(token=None, dry_run=True))
    bench.fails(
        InvalidUsageAllocationsException, ami(dry_run=True, quantity=2, allocations=(tagged(1),))
    )


def test_per_request_dry_run(bench: Bench) -> None:
    assert bench.meter(agent(token="tok-dry", quantity=1, dry_run=True)) == DRY_RUN_RECORD_ID
    assert asyncio.run(bench.store.claim(ALICE, "tok-dry")) is None
    assert bench.billed() == []

    first = bench.meter(agent(quantity=2))
    assert bench.meter(agent(quantity=2, dry_run=True)) == DRY_RUN_RECORD_ID
    error = bench.fails(IdempotencyConflictException, agent(quantity=3, dry_run=True))
    assert (error.http_status, error.message) == (409, CONFLICT)
    assert [r.metering_record_id for r in bench.billed()] == [first]
    # the dry-run token was never claimed: it bills with any parameters
    assert bench.meter(agent(token="tok-dry", quantity=8)) != first
    assert len(bench.billed()) == 2


@pytest.fixture
def error_bench(store: OperatorStore) -> Bench:
    """MeterUsage with ``--dry-run-answer error``."""
    bench = Bench(store)
    bench.operation = MeterUsage(
        store, bench.clock, bench.ids, Settings().meter_usage_window, DryRunAnswer.ERROR
    )
    return bench


def test_the_error_setting_answers_the_dry_run_operation_error(error_bench: Bench) -> None:
    error = error_bench.fails(DryRunOperation, ami(dry_run=True))
    assert (error.code, error.http_status, error.message) == ("DryRunOperation", 400, DRY_RUN)
    error_bench.fails(DryRunOperation, agent(token="tok-dry", quantity=1, dry_run=True))
    # a dry run that would fail still gets the real call's error, and real calls bill
    error_bench.fails(InvalidProductCodeException, ami(dry_run=True, product_code="nope"))
    first = error_bench.meter(ami(quantity=5))
    error_bench.fails(DuplicateRequestException, ami(quantity=6, dry_run=True))
    assert [r.metering_record_id for r in error_bench.billed()] == [first]


def test_the_setting_defaults_to_aws_answer() -> None:
    assert Settings().dry_run_answer is DryRunAnswer.SUCCESS
    assert [a.value for a in DryRunAnswer] == ["success", "error"]


# --- entitlement of the caller -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "message"),
    [
        pytest.param(
            Caller.anonymous("AKIATESTCAROL0000001", "i-0c"),
            f"Customer 222233334444 is not entitled to product 'prod-ami' at the usage "
            f"timestamp ({T}).",
            id="carol-suspended",
        ),
        pytest.param(
            Caller.anonymous(DAVE_KEY),
            f"Customer {DAVE} is not entitled to product 'prod-ami' at the usage timestamp ({T}).",
            id="dave-no-agreement",
        ),
        pytest.param(
            Caller.anonymous("AKIAUNKNOWNKEY000001", "i-0aaa"),
            NO_BUYER.format("access key AKIAUNKNOWNKEY000001"),
            id="unknown-key",
        ),
        pytest.param(
            Caller.anonymous("AKIATESTSELLER000001"),
            NO_BUYER.format("access key AKIATESTSELLER000001"),
            id="seller-key",
        ),
        pytest.param(
            Caller("seller", "111122223333", "AKIATESTSELLER000001"),
            NO_BUYER.format("access key AKIATESTSELLER000001"),
            id="strict-seller",
        ),
        pytest.param(Caller.anonymous(), NO_BUYER.format("unsigned requests"), id="unsigned"),
        pytest.param(
            Caller.anonymous(None, "i-0aaa"),
            NO_BUYER.format("unsigned requests"),
            id="session-without-key",
        ),
    ],
)
def test_customer_not_entitled(bench: Bench, caller: Caller, message: str) -> None:
    error = bench.fails(CustomerNotEntitledException, ami(), caller)
    assert error.message == message


def test_agreement_must_cover_the_usage_timestamp(bench: Bench) -> None:
    bench.agree(
        Agreement(DAVE_AMI, DAVE, "prod-ami", starts_at=HOUR),
        Agreement(DAVE_CONTAINER, DAVE, "prod-container", starts_at=0, ends_at=HOUR),
    )
    dave = Caller.anonymous(DAVE_KEY)
    assert bench.meter(ami(timestamp=HOUR), dave) == rid(1)
    error = bench.fails(CustomerNotEntitledException, ami(timestamp=HOUR - 1), dave)
    assert error.message == (
        f"Customer {DAVE} is not entitled to product 'prod-ami' at the usage timestamp "
        f"({HOUR - 1})."
    )
    container = ami(product_code="prod-container", dimension="tasks")
    assert bench.meter(dataclasses.replace(container, timestamp=HOUR - 1), dave) == rid(2)
    error = bench.fails(
        CustomerNotEntitledException, dataclasses.replace(container, timestamp=HOUR), dave
    )
    assert error.message == (
        f"Customer {DAVE} is not entitled to product 'prod-container' at the usage timestamp "
        f"({HOUR})."
    )


@pytest.mark.parametrize(
    ("state", "bills"),
    [
        (AgreementState.SUBSCRIBED, True),
        (AgreementState.UNSUBSCRIBE_PENDING, True),
        (AgreementState.UNSUBSCRIBED, False),
        (AgreementState.SUSPENDED, False),
    ],
)
def test_agreement_states_that_bill(bench: Bench, state: AgreementState, bills: bool) -> None:
    bench.agree(Agreement(DAVE_AMI, DAVE, "prod-ami", state, starts_at=0))
    dave = Caller.anonymous(DAVE_KEY)
    if bills:
        assert bench.meter(ami(), dave) == rid(1)
        assert [r.license_arn for r in bench.billed()] == [DAVE_AMI]
    else:
        bench.fails(CustomerNotEntitledException, ami(), dave)


# --- allocations and tags ----------------------------------------------------------------------


def test_allocations_are_billed_with_the_record(bench: Bench) -> None:
    bench.meter(
        ami(quantity=10, allocations=(tagged(4, ("team", "a"), ("env", "prod")), tagged(6)))
    )
    assert [r.allocations for r in bench.billed()] == [
        [
            {
                "quantity": 4,
                "tags": [{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}],
            },
            {"quantity": 6, "tags": []},
        ]
    ]


def test_decimal_allocations_split_a_decimal_quantity(bench: Bench) -> None:
    request = ami(
        quantity=None,
        quantity_decimal="2.5",
        allocations=(tagged(None, ("team", "a"), decimal="1.25"), tagged(None, decimal="1.250")),
    )
    assert bench.meter(request) == rid(1)
    [row] = bench.billed()
    assert row.quantity == Decimal("2.5")
    assert row.allocations == [
        {"quantity": 1.25, "tags": [{"key": "team", "value": "a"}]},
        {"quantity": 1.25, "tags": []},
    ]


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        pytest.param(
            ami(quantity=10, allocations=(tagged(4, ("team", "a")), tagged(5))),
            InvalidUsageAllocationsException,
            "The sum of allocated usage quantities (9) is not equal to the usage quantity (10).",
            id="sum",
        ),
        pytest.param(
            ami(
                quantity=None,
                quantity_decimal="2.5",
                allocations=(tagged(None, ("t", "a"), decimal="1.2"), tagged(None, decimal="1.2")),
            ),
            InvalidUsageAllocationsException,
            "The sum of allocated usage quantities (2.4) is not equal to the usage quantity (2.5).",
            id="decimal-sum",
        ),
        pytest.param(
            ami(quantity=None, quantity_decimal="2", allocations=(tagged(2),)),
            InvalidUsageAllocationsException,
            "Every usage allocation must use AllocatedUsageQuantityAsDecimal, like the usage "
            "quantity.",
            id="integer-allocation-of-decimal",
        ),
        pytest.param(
            ami(quantity=2, allocations=(tagged(None, decimal="2"),)),
            InvalidUsageAllocationsException,
            "Every usage allocation must use AllocatedUsageQuantity, like the usage quantity.",
            id="decimal-allocation-of-integer",
        ),
        pytest.param(
            ami(quantity=2, allocations=(tagged(1, ("team", "a")), tagged(1, ("team", "a")))),
            InvalidUsageAllocationsException,
            "Each usage allocation must have a unique set of tags.",
            id="same-tag-set",
        ),
        pytest.param(
            ami(quantity=2, allocations=(tagged(1), tagged(1))),
            InvalidUsageAllocationsException,
            "At most one usage allocation may have no tags.",
            id="two-untagged",
        ),
        pytest.param(
            ami(quantity=2, allocations=(tagged(2, ("team", "a"), ("team", "b")),)),
            InvalidTagException,
            "A usage allocation has the same tag key more than once.",
            id="key-twice",
        ),
        pytest.param(
            ami(
                quantity=2,
                allocations=(
                    tagged(1, ("k1", "v"), ("k2", "v"), ("k3", "v")),
                    tagged(1, ("k4", "v"), ("k5", "v"), ("k6", "v")),
                ),
            ),
            InvalidTagException,
            "A usage record's allocations use 6 distinct tag keys; the limit is 5.",
            id="six-keys",
        ),
    ],
)
def test_allocation_rules(
    bench: Bench, request_: MeterUsageRequest, error: type[AwsError], message: str
) -> None:
    assert bench.fails(error, request_).message == message


def test_five_distinct_tag_keys_are_allowed(bench: Bench) -> None:
    allocations = (
        tagged(1, ("k1", "v"), ("k2", "v"), ("k3", "v")),
        tagged(1, ("k4", "v"), ("k5", "v"), ("k1", "w")),
    )
    assert bench.meter(ami(quantity=2, allocations=allocations)) == rid(1)


# --- the time window -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [
        (EPOCH - 21599, True),  # 6 h - 1 s ago
        (EPOCH - 21599.5, True),
        (EPOCH - 21600, False),  # exactly 6 h ago: not "less than 6 hours"
        (EPOCH - 86400, False),
        (EPOCH + 300, True),  # 5 min ahead
        (EPOCH + 300.5, False),
        (EPOCH + 301, False),
        (0, False),
    ],
)
def test_window_edges(bench: Bench, timestamp: float, accepted: bool) -> None:
    if accepted:
        assert bench.meter(ami(timestamp=timestamp)) == rid(1)
        assert [r.usage_timestamp for r in bench.billed()] == [timestamp]
    else:
        error = bench.fails(TimestampOutOfBoundsException, ami(timestamp=timestamp))
        assert error.message == OUT_OF_WINDOW.format(timestamp)


@pytest.mark.parametrize(
    ("max_age", "described"),
    [
        (timedelta(hours=2), "2 hours"),
        (timedelta(seconds=5400), "90 minutes"),
        (timedelta(hours=1), "1 hour"),
    ],
)
def test_meter_usage_window_setting(
    store: OperatorStore, max_age: timedelta, described: str
) -> None:
    settings = Settings(meter_usage_max_age=max_age)
    bench = Bench(store, settings.meter_usage_window)
    age = int(max_age.total_seconds())
    assert bench.meter(ami(timestamp=EPOCH - age + 1)) == rid(1)
    error = bench.fails(TimestampOutOfBoundsException, ami(timestamp=EPOCH - age))
    assert error.message == (
        f"The timestamp ({EPOCH - age}) is out of the allowed range: usage must be less than "
        f"{described} in the past and no more than 5 minutes in the future."
    )
    assert bench.meter(ami(timestamp=EPOCH + 300)) == rid(2)


def test_the_window_follows_the_clock(bench: Bench) -> None:
    bench.fails(TimestampOutOfBoundsException, ami(timestamp=EPOCH + 3600))
    bench.clock.advance(timedelta(hours=1))
    assert bench.meter(ami(timestamp=EPOCH + 3600)) == rid(1)
    bench.fails(TimestampOutOfBoundsException, ami(timestamp=EPOCH - 18000))
