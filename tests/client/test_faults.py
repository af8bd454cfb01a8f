"""Every fault of marketmeter's test bench, against the metering client: throttling, 500s,
UnprocessedRecords, latency (an answer lost), AWS's quota, a crash between send and store,
and the clock moved across the hour and the window's edges. Each ends with the ledger check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from marketmeter.client import Backoff, MeteringClient, RecordState
from marketmeter.testing.pytest_plugin import Marketmeter
from tests.client.conftest import HOUR, assert_billed_exactly_once, aws_for

Make = Callable[..., MeteringClient]

EVENTS = [
    (customer, dimension, quantity, HOUR - timedelta(hours=hours, minutes=10))
    for quantity, (customer, dimension, hours) in enumerate(
        [
            ("alice-cust-0001", "users", 0),
            ("alice-cust-0001", "api_calls", 0),
            ("bob-cust-0002", "users", 0),
            ("bob-cust-0002", "users", 1),
            ("alice-cust-0001", "users", 2),
        ],
        start=1,
    )
]


def record_all(meter: MeteringClient, events: list[Any] = EVENTS) -> None:
    for event in events:
        meter.record(*event)


def statuses(bench: Marketmeter) -> list[tuple[int, str | None]]:
    calls = bench.journal.entries(operation="BatchMeterUsage", limit=1000)
    return [(call["status"], call["errorType"]) for call in calls]


def test_throttling_is_retried_with_backoff(bench: Marketmeter, make_meter: Make) -> None:
    pauses: list[float] = []
    meter = make_meter(sleep=pauses.append, rate=1e6)  # only the backoff pauses
    record_all(meter)
    bench.faults.throttle(operation="BatchMeterUsage", times=3)
    result = meter.flush()
    assert (result.calls, result.retries) == (4, 3)
    assert statuses(bench) == [(400, "ThrottlingException")] * 3 + [(200, None)]
    # full jitter: each pause is drawn below base * 2**n
    assert len(pauses) == 3
    assert all(0 <= p <= 0.001 * 2**n for n, p in enumerate(pauses))
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_server_errors_are_retried(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    record_all(meter)
    bench.faults.error("InternalServiceErrorException", operation="BatchMeterUsage", times=2)
    assert meter.flush().settled == {RecordState.SENT: 5}
    assert statuses(bench) == [(500, "InternalServiceErrorException")] * 2 + [(200, None)]
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_errors_past_the_attempts_leave_records_pending(
    bench: Marketmeter, make_meter: Make
) -> None:
    meter = make_meter(backoff=Backoff(base=0.001, cap=0.01, max_attempts=3))
    record_all(meter)
    bench.faults.error("InternalServiceErrorException", operation="BatchMeterUsage", times=3)
    result = meter.flush()
    assert (result.calls, result.pending, result.settled) == (3, 5, {})
    assert {r.error_code for r in meter.records()} == {"InternalServiceErrorException"}
    assert bench.usage(product="demo-saas-legacy") == []
    assert meter.flush().settled == {RecordState.SENT: 5}  # the next flush sends them
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_unprocessed_records_are_sent_again(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    record_all(meter)
    bench.faults.unprocessed(count=2, times=2, seed=3)
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 5}
    calls = bench.journal.entries(operation="BatchMeterUsage")
    assert [len(c["request"]["UsageRecords"]) for c in calls] == [5, 2, 2]
    assert [c["verdicts"].count("Unprocessed") for c in calls] == [2, 2, 0]
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_random_faults_together(bench: Marketmeter, make_meter: Make) -> None:
    events = [
        (customer, dimension, hours * 3 + 1, HOUR - timedelta(hours=hours, minutes=1))
        for customer in ("alice-cust-0001", "bob-cust-0002", "carol-cust-0003")
        for dimension in ("users", "api_calls", "storage_gb")
        for hours in range(1, 6)
    ]
    meter = make_meter(backoff=Backoff(base=0.001, cap=0.01, max_attempts=20))
    record_all(meter, events)
    bench.faults.add(
        {
            "operation": "BatchMeterUsage",
            "probability": 0.3,
            "seed": 11,
            "error": {"code": "ThrottlingException"},
        },
        {
            "operation": "BatchMeterUsage",
            "probability": 0.3,
            "seed": 12,
            "error": {"code": "InternalServiceErrorException"},
        },
        {
            "operation": "BatchMeterUsage",
            "probability": 0.5,
            "seed": 13,
            "unprocessedRecords": {"count": 3},
        },
    )
    bench.faults.latency(20)
    result = meter.flush()
    assert result.pending == 0
    assert result.settled == {RecordState.SENT: 30, RecordState.FAILED: 15}
    assert result.retries > 0
    units = assert_billed_exactly_once(bench, meter, events)
    assert units[RecordState.FAILED] == sum(e[2] for e in events if e[0] == "carol-cust-0003")


def test_a_lost_answer_is_sent_again_and_billed_once(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter(aws=aws_for(bench, config=_timeout(0.3)))
    record_all(meter)
    bench.faults.add({"operation": "BatchMeterUsage", "latencyMs": 800, "times": 1})
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 5}
    time.sleep(0.8)  # the first call's answer, which the client gave up on, is in
    calls = bench.journal.entries(operation="BatchMeterUsage")
    assert [c["verdicts"] for c in calls] == [["Success"] * 5] * 2
    first = {r["MeteringRecordId"] for r in calls[0]["response"]["Results"]}
    assert first == {r.metering_record_id for r in meter.records()}
    assert_billed_exactly_once(bench, meter, EVENTS)


def _timeout(seconds: float) -> Any:
    from botocore.config import Config

    return Config(read_timeout=seconds)


class Crash(BaseException):
    """Stands for the process dying: nothing catches it."""


def test_a_crash_between_send_and_store_bills_nothing_twice(
    bench: Marketmeter, make_meter: Make
) -> None:
    aws = aws_for(bench)

    def die(**_: Any) -> None:
        raise Crash

    aws.meta.events.register("after-call.marketplace-metering.BatchMeterUsage", die)
    meter = make_meter(aws=aws)
    record_all(meter)
    with pytest.raises(Crash):
        meter.flush()
    assert [(r.state, r.attempts) for r in meter.records()] == [(RecordState.PENDING, 1)] * 5
    assert len(bench.usage(product="demo-saas-legacy")) == 5  # billed, not stored
    # more usage for a sent hour after the crash: never added to the record already sent
    late = ("alice-cust-0001", "users", 10, HOUR - timedelta(minutes=5))
    restarted = make_meter()
    restarted.record(*late)
    assert restarted.flush().settled == {RecordState.SENT: 5, RecordState.LATE: 1}
    calls = bench.journal.entries(operation="BatchMeterUsage")
    assert calls[0]["request"]["UsageRecords"] == calls[1]["request"]["UsageRecords"]
    assert_billed_exactly_once(bench, meter, [*EVENTS, late])


def test_the_aws_quota(bench: Marketmeter, make_meter: Make) -> None:
    """Over the quota the client is throttled and retries; at it, it is never throttled."""
    events = [
        (customer, dimension, hours, HOUR - timedelta(hours=hours, minutes=1))
        for customer in ("alice-cust-0001", "bob-cust-0002")
        for dimension in ("users", "api_calls", "storage_gb")
        for hours in range(1, 6)
    ]
    bench.faults.quota("custom", rates={"BatchMeterUsage": 4})
    greedy = make_meter(rate=1000, backoff=Backoff(base=0.05, cap=0.5, max_attempts=30))
    for start in range(0, 30, 3):  # ten calls of three records, as fast as allowed
        record_all(greedy, events[start : start + 3])
        greedy.flush()
    throttled = [s for s in statuses(bench) if s[1] == "ThrottlingException"]
    assert throttled
    assert_billed_exactly_once(bench, greedy, events)


def test_the_rate_limit_keeps_under_the_quota(bench: Marketmeter, tmp_path: Any) -> None:
    bench.faults.quota("custom", rates={"BatchMeterUsage": 4})
    meter = MeteringClient(
        tmp_path / "paced.db", "demo-saas-legacy", aws=aws_for(bench), clock=bench.clock.now, rate=3
    )
    events = [
        ("alice-cust-0001", "users", n, HOUR - timedelta(hours=n, minutes=1)) for n in range(1, 6)
    ]
    started = time.monotonic()
    for event in events:  # five flushes, one call each
        meter.record(*event)
        meter.flush()
    assert time.monotonic() - started >= 4 / 3 - 0.05
    assert [s for s in statuses(bench) if s[0] != 200] == []
    assert_billed_exactly_once(bench, meter, events)


def test_an_injected_refusal_of_the_batch_is_split(bench: Marketmeter, make_meter: Make) -> None:
    """A whole-batch refusal (here injected once) sends each record alone."""
    meter = make_meter()
    record_all(meter)
    bench.faults.error("InvalidProductCodeException", operation="BatchMeterUsage", times=1)
    assert meter.flush().settled == {RecordState.SENT: 5}
    assert [len(c["request"]["UsageRecords"]) for c in bench.journal.entries()] == [5] + [1] * 5
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_access_denied_keeps_records_pending(bench: Marketmeter, make_meter: Make) -> None:
    meter = make_meter()
    record_all(meter)
    rule = bench.faults.error("AccessDeniedException", operation="BatchMeterUsage")
    result = meter.flush()
    assert (result.calls, result.pending, result.settled) == (1, 5, {})
    assert result.errors[0].startswith("record 1: AccessDeniedException: ")
    bench.faults.remove(rule["id"])  # the seller fixes the role
    assert meter.flush().settled == {RecordState.SENT: 5}
    assert_billed_exactly_once(bench, meter, EVENTS)


def test_concurrent_flushes_send_each_record_once(bench: Marketmeter, make_meter: Make) -> None:
    meters = [make_meter() for _ in range(3)]  # three processes' clients on one spool
    record_all(meters[0])
    bench.faults.latency(100)
    threads = [threading.Thread(target=m.flush) for m in meters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(c["request"]["UsageRecords"]) for c in bench.journal.entries()] == [5]
    assert_billed_exactly_once(bench, meters[0], EVENTS)
