"""The service clock moved across the hour's and the window's edges: nothing is sent before
its hour closes, a record near the window's end raises the alarm, one past it is expired and
reported (never sent in a batch AWS would refuse whole), and a clock behind the service's is
survived."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from marketmeter.client import MeteringClient, RecordState, SpoolRecord
from marketmeter.testing.pytest_plugin import Marketmeter
from tests.client.conftest import HOUR, NOW, assert_billed_exactly_once, ledger_by_key

Make = Callable[..., MeteringClient]


def test_nothing_is_sent_before_its_hour_closes(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    events = [
        ("alice-cust-0001", "users", 1, HOUR - timedelta(microseconds=1)),
        ("alice-cust-0001", "users", 2, HOUR),
    ]
    for event in events:
        meter.record(*event)
    assert meter.flush().settled == {RecordState.SENT: 1}
    bench.clock.set(HOUR + timedelta(minutes=59, seconds=59))
    assert meter.flush().calls == 0
    bench.clock.set(HOUR + timedelta(hours=1))
    assert meter.flush().settled == {RecordState.SENT: 1}
    assert sorted(key[2] for key in ledger_by_key(bench)) == [HOUR - timedelta(hours=1), HOUR]
    assert_billed_exactly_once(bench, meter, events)


def test_the_alarm_before_the_window_closes(bench: Marketmeter, make_meter: Make) -> None:
    alarms: list[list[SpoolRecord]] = []
    outcomes: list[SpoolRecord] = []
    meter = make_meter(on_alarm=alarms.append, on_outcome=outcomes.append)

    def ago(hours: int, minutes: int) -> datetime:
        return NOW - timedelta(hours=hours, minutes=minutes)

    events = [
        ("alice-cust-0001", "users", 1, ago(4, 45)),  # fine
        ("alice-cust-0001", "api_calls", 2, ago(5, 10)),  # within the alarm margin (1 h)
        ("bob-cust-0002", "users", 3, ago(5, 50)),  # within the alarm margin, still sent
        ("bob-cust-0002", "api_calls", 4, ago(5, 57)),  # within the send margin (5 min)
    ]
    for event in events:
        meter.record(*event)
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 3, RecordState.EXPIRED: 1}
    assert [[(r.dimension, int(r.quantity)) for r in alarm] for alarm in alarms] == [
        [("api_calls", 2), ("users", 3)]
    ]
    [expired] = [o for o in outcomes if o.state is RecordState.EXPIRED]
    assert (expired.quantity, expired.error_code, expired.attempts) == (
        Decimal(4),
        "WindowClosed",
        0,
    )
    [call] = bench.journal.entries(operation="BatchMeterUsage")
    assert len(call["request"]["UsageRecords"]) == 3
    units = assert_billed_exactly_once(bench, meter, events)
    assert units == {RecordState.SENT: 6, RecordState.EXPIRED: 4}


def test_at_risk_in_the_status(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    meter.record("alice-cust-0001", "users", 1, NOW - timedelta(hours=2))
    meter.record("bob-cust-0002", "users", 1, NOW - timedelta(hours=2))
    bench.faults.error("InternalServiceErrorException", operation="BatchMeterUsage")  # AWS down
    meter.flush()
    assert (meter.status().count("pending"), meter.status().at_risk) == (2, 0)
    bench.clock.advance(timedelta(hours=3, minutes=1))
    assert (meter.status().count("pending"), meter.status().at_risk) == (2, 2)
    bench.clock.advance(timedelta(minutes=55))
    assert meter.flush().settled == {RecordState.EXPIRED: 2}
    assert meter.status().at_risk == 0


def test_the_clock_moved_past_the_window(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    events = [("alice-cust-0001", "users", 5, HOUR - timedelta(minutes=50))]
    meter.record(*events[0])
    bench.clock.advance(timedelta(hours=6))
    assert meter.flush().settled == {RecordState.EXPIRED: 1}
    assert bench.journal.entries(operation="BatchMeterUsage") == []
    assert_billed_exactly_once(bench, meter, events)


def test_a_client_clock_behind_the_service(bench: Marketmeter, make_meter: Make) -> None:
    """The client thinks a record is still in the window; AWS refuses the batch. The batch is
    split so the others are billed, and the record waits until the client's clock agrees."""
    skew = timedelta(minutes=10)
    meter = make_meter(clock=lambda: bench.clock.now() - skew)
    events = [
        ("alice-cust-0001", "users", 1, NOW - timedelta(hours=6, seconds=30)),
        ("bob-cust-0002", "users", 2, NOW - timedelta(hours=1)),
    ]
    for event in events:
        meter.record(*event)
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 1}
    [waiting] = meter.records(state="pending")
    assert waiting.error_code == "TimestampOutOfBoundsException"
    assert [c["errorType"] for c in bench.journal.entries(operation="BatchMeterUsage")] == [
        "TimestampOutOfBoundsException",
        "TimestampOutOfBoundsException",
        None,
    ]
    bench.clock.advance(skew)
    assert meter.flush().settled == {RecordState.EXPIRED: 1}
    assert_billed_exactly_once(bench, meter, events)
