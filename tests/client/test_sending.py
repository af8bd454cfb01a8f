"""The metering client against a real marketmeter server: aggregation, batches, the hour rule,
and every answer of BatchMeterUsage, checked against marketmeter's ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from marketmeter.client import Allocation, Customer, MeteringClient, RecordState, SpoolRecord
from marketmeter.testing.pytest_plugin import Marketmeter
from tests.client.conftest import HOUR, NOW, PRODUCT, assert_billed_exactly_once, ledger_by_key

Make = Callable[..., MeteringClient]


def batch_sizes(bench: Marketmeter) -> list[int]:
    calls = bench.journal.entries(operation="BatchMeterUsage", limit=1000)
    return [len(call["request"]["UsageRecords"]) for call in calls]


def test_one_record_per_customer_dimension_and_closed_hour(
    bench: Marketmeter, make_meter: Make
) -> None:
    meter = make_meter()
    events = [
        ("alice-cust-0001", "users", 2, HOUR - timedelta(hours=2, minutes=-5)),
        ("alice-cust-0001", "users", 3, HOUR - timedelta(hours=1, minutes=-59)),
        ("alice-cust-0001", "users", 4, HOUR - timedelta(hours=1, minutes=-1)),
        ("bob-cust-0002", "api_calls", 40, HOUR - timedelta(minutes=1)),
        ("bob-cust-0002", "api_calls", 2, HOUR - timedelta(minutes=30)),
        ("alice-cust-0001", "users", 9, HOUR + timedelta(minutes=10)),  # the open hour
    ]
    for customer, dimension, quantity, at in events:
        meter.record(customer, dimension, quantity, at)
    result = meter.flush()
    assert result.aggregated == 5
    assert result.calls == 1
    assert result.settled == {RecordState.SENT: 3}
    ledger = ledger_by_key(bench)
    assert {k: v["quantity"] for k, v in ledger.items()} == {
        ("alice-cust-0001", "users", HOUR - timedelta(hours=2)): 2,
        ("alice-cust-0001", "users", HOUR - timedelta(hours=1)): 7,
        ("bob-cust-0002", "api_calls", HOUR - timedelta(hours=1)): 42,
    }
    # the timestamp sent is the hour's latest usage
    stamps = {v["timestamp"] for v in ledger.values()}
    assert int((HOUR - timedelta(minutes=1)).timestamp()) in stamps
    assert meter.status().unaggregated == 1
    bench.clock.advance(timedelta(hours=1))  # the 12:00 hour closes
    assert meter.flush().settled == {RecordState.SENT: 1}
    assert batch_sizes(bench) == [3, 1]
    assert_billed_exactly_once(bench, meter, events)


def test_on_demand_flush_sends_the_open_hour_and_later_usage_is_late(
    bench: Marketmeter, make_meter: Make
) -> None:
    outcomes: list[SpoolRecord] = []
    meter = make_meter(on_outcome=outcomes.append)
    events = [("alice-cust-0001", "users", 5, NOW), ("alice-cust-0001", "users", 1, NOW)]
    meter.record(*events[0])
    assert meter.flush().settled == {}  # the hour is open
    assert meter.flush(include_open_hour=True).settled == {RecordState.SENT: 1}
    meter.record(*events[1])
    bench.clock.advance(timedelta(hours=1))
    result = meter.flush()
    assert result.settled == {RecordState.LATE: 1}
    assert result.calls == 0
    assert [(o.state, o.quantity, o.error_code) for o in outcomes] == [
        (RecordState.SENT, Decimal(5), None),
        (RecordState.LATE, Decimal(1), "LateUsage"),
    ]
    units = assert_billed_exactly_once(bench, meter, events)
    assert units == {RecordState.SENT: 5, RecordState.LATE: 1}


def test_batches_of_25(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    events = [
        (customer, dimension, hours + 1, HOUR - timedelta(hours=hours))
        for customer in ("alice-cust-0001", "bob-cust-0002")
        for dimension in ("users", "api_calls", "storage_gb")
        for hours in range(1, 6)
    ]
    meter.record_many([(*event, None) for event in events])
    assert meter.flush().settled == {RecordState.SENT: 30}
    assert batch_sizes(bench) == [25, 5]
    assert_billed_exactly_once(bench, meter, events)


def test_decimal_quantities_and_allocations(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    at = HOUR - timedelta(minutes=20)
    meter.record("alice-cust-0001", "storage_gb", Decimal("1.5"), at)
    meter.record("alice-cust-0001", "storage_gb", Decimal("2.25"), at)
    meter.record(
        "bob-cust-0002",
        "users",
        5,
        at,
        allocations=[Allocation(3, {"team": "red"}), Allocation(2, {"team": "blue"})],
    )
    meter.record("bob-cust-0002", "users", 1, at, allocations=[Allocation(1, {"team": "red"})])
    meter.record("bob-cust-0002", "users", 2, at)  # not allocated: the untagged part
    assert meter.flush().settled == {RecordState.SENT: 2}
    [request] = [c["request"] for c in bench.journal.entries(operation="BatchMeterUsage")]
    alice, bob = sorted(request["UsageRecords"], key=lambda r: r["CustomerIdentifier"])
    assert alice["QuantityAsDecimal"] == "3.75"
    assert "Quantity" not in alice
    assert bob["Quantity"] == 8
    assert bob["UsageAllocations"] == [
        {"AllocatedUsageQuantity": 4, "Tags": [{"Key": "team", "Value": "red"}]},
        {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "team", "Value": "blue"}]},
        {"AllocatedUsageQuantity": 2},
    ]
    ledger = ledger_by_key(bench)
    assert ledger[("alice-cust-0001", "storage_gb", HOUR - timedelta(hours=1))]["quantity"] == 3.75
    assert ledger[("bob-cust-0002", "users", HOUR - timedelta(hours=1))]["quantity"] == 8


def test_concurrent_agreements_by_account_and_license(bench: Marketmeter, make_meter: Make) -> None:
    alice = Customer(
        account_id="444455556666",
        license_arn="arn:aws:license-manager::294406891311:license:l-a11ce000000000000000000000000002",
    )
    meter = make_meter(product_code="demo-saas-ca")
    meter.record(alice, "seats", 3, HOUR - timedelta(minutes=5))
    assert meter.flush().settled == {RecordState.SENT: 1}
    [row] = bench.usage(product="demo-saas-ca")
    assert row["licenseArn"] == alice.license_arn
    assert row["quantity"] == 3
    assert [r.metering_record_id for r in meter.records()] == [row["meteringRecordId"]]


def test_refused_records_are_reported_and_the_others_billed(
    bench: Marketmeter, make_meter: Make
) -> None:
    outcomes: list[SpoolRecord] = []
    meter = make_meter(on_outcome=outcomes.append)
    at = HOUR - timedelta(minutes=10)
    events = [
        ("alice-cust-0001", "users", 1, at),
        ("carol-cust-0003", "users", 2, at),  # suspended
        ("bob-cust-0002", "no_such_dimension", 3, at),
        ("bob-cust-0002", "users", 4, at),
    ]
    for event in events:
        meter.record(*event)
    bad_license = Customer(
        identifier="alice-cust-0001",
        license_arn="arn:aws:license-manager::444455556666:license:l-00000000000000000000000000000bad",
    )
    meter.record(bad_license, "api_calls", 5, at)
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 2, RecordState.FAILED: 3}
    failed = {
        (o.customer.label, o.dimension): o.error_code
        for o in outcomes
        if o.customer and o.state is RecordState.FAILED
    }
    assert failed == {
        ("carol-cust-0003", "users"): "CustomerNotSubscribed",
        ("bob-cust-0002", "no_such_dimension"): "InvalidUsageDimensionException",
        ("alice-cust-0001", "api_calls"): "InvalidLicenseException",
    }
    # the whole batch, refused for one record, then each record alone
    assert batch_sizes(bench) == [5, 1, 1, 1, 1, 1]
    status = meter.status()
    assert status.count("failed") == 3
    assert status.count("sent") == 2
    units = assert_billed_exactly_once(
        bench, meter, [*events, ("alice-cust-0001", "api_calls", 5, at)]
    )
    assert units == {RecordState.SENT: 5, RecordState.FAILED: 10}


def test_a_duplicate_record_is_kept_and_reported(bench: Marketmeter, make_meter: Make) -> None:
    at = HOUR - timedelta(minutes=10)
    bench.client.batch_meter_usage(
        ProductCode=PRODUCT,
        UsageRecords=[
            {
                "Timestamp": at,
                "CustomerIdentifier": "bob-cust-0002",
                "Dimension": "users",
                "Quantity": 7,
            }
        ],
    )
    meter = make_meter()
    events = [("bob-cust-0002", "users", 3, at), ("alice-cust-0001", "users", 1, at)]
    for event in events:
        meter.record(*event)
    assert meter.flush().settled == {RecordState.SENT: 1, RecordState.DUPLICATE: 1}
    [duplicate] = meter.records(state="duplicate")
    assert (duplicate.quantity, duplicate.error_code) == (Decimal(3), "DuplicateRecord")
    foreign = ("bob-cust-0002", "users", HOUR - timedelta(hours=1))
    assert ledger_by_key(bench)[foreign]["quantity"] == 7  # the first quantity stays
    assert_billed_exactly_once(bench, meter, events, foreign=[foreign])
