"""AWS quotas: token buckets per operation and account on a fake monotonic clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from marketmeter.refusal import Refusal
from marketmeter.testbench.quotas import AWS_RATES, QuotaLimiter


class FakeMonotonic:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def limiter(clock: FakeMonotonic) -> QuotaLimiter:
    limiter = QuotaLimiter(clock)
    limiter.configure("aws")
    return limiter


def admitted(limiter: QuotaLimiter, calls: int, operation: str, account: str = "111") -> int:
    return sum(limiter.admit(operation, account) for _ in range(calls))


def test_aws_rates_are_the_published_figures() -> None:
    assert dict(AWS_RATES) == {"BatchMeterUsage": 10.0, "MeterUsage": 10.0, "RegisterUsage": 5.0}


def test_off_by_default_admits_everything(clock: FakeMonotonic) -> None:
    limiter = QuotaLimiter(clock)
    assert limiter.state_json() == {"profile": "off", "rates": {}}
    assert admitted(limiter, 1000, "MeterUsage") == 1000


@pytest.mark.parametrize("operation", ["BatchMeterUsage", "MeterUsage"])
def test_ten_in_one_instant_then_the_eleventh_is_refused(
    limiter: QuotaLimiter, operation: str
) -> None:
    assert [limiter.admit(operation, "111") for _ in range(11)] == [True] * 10 + [False]


def test_a_tenth_of_a_second_refills_exactly_one(
    limiter: QuotaLimiter, clock: FakeMonotonic
) -> None:
    assert admitted(limiter, 11, "MeterUsage") == 10
    clock.now += 0.1
    assert [limiter.admit("MeterUsage", "111") for _ in range(2)] == [True, False]


def test_refill_stops_at_one_second_of_burst(limiter: QuotaLimiter, clock: FakeMonotonic) -> None:
    assert admitted(limiter, 10, "MeterUsage") == 10
    clock.now += 60
    assert admitted(limiter, 20, "MeterUsage") == 10


def test_accounts_are_independent(limiter: QuotaLimiter) -> None:
    assert admitted(limiter, 11, "MeterUsage", account="111") == 10
    assert admitted(limiter, 11, "MeterUsage", account="222") == 10


def test_operations_are_independent(limiter: QuotaLimiter) -> None:
    assert admitted(limiter, 11, "MeterUsage") == 10
    assert admitted(limiter, 11, "BatchMeterUsage") == 10


def test_register_usage_allows_five(limiter: QuotaLimiter, clock: FakeMonotonic) -> None:
    assert admitted(limiter, 6, "RegisterUsage") == 5
    clock.now += 0.2
    assert admitted(limiter, 2, "RegisterUsage") == 1


def test_resolve_customer_is_unlimited_under_aws(limiter: QuotaLimiter) -> None:
    assert admitted(limiter, 1000, "ResolveCustomer") == 1000


def test_aws_state(limiter: QuotaLimiter) -> None:
    assert limiter.state_json() == {
        "profile": "aws",
        "rates": {"BatchMeterUsage": 10.0, "MeterUsage": 10.0, "RegisterUsage": 5.0},
    }


def test_aws_rates_can_be_overridden_per_operation(limiter: QuotaLimiter) -> None:
    limiter.configure("aws", {"MeterUsage": 2, "ResolveCustomer": 3})
    assert limiter.state_json() == {
        "profile": "aws",
        "rates": {
            "BatchMeterUsage": 10.0,
            "MeterUsage": 2.0,
            "ResolveCustomer": 3.0,
            "RegisterUsage": 5.0,
        },
    }
    assert admitted(limiter, 5, "MeterUsage") == 2
    assert admitted(limiter, 5, "ResolveCustomer") == 3


def test_custom_rates_limit_only_the_named_operations(
    limiter: QuotaLimiter, clock: FakeMonotonic
) -> None:
    limiter.configure("custom", {"BatchMeterUsage": 2.5})
    assert limiter.state_json() == {"profile": "custom", "rates": {"BatchMeterUsage": 2.5}}
    assert admitted(limiter, 5, "BatchMeterUsage") == 2
    clock.now += 0.4
    assert admitted(limiter, 5, "BatchMeterUsage") == 1
    assert admitted(limiter, 100, "MeterUsage") == 100


def test_a_rate_below_one_still_bursts_one_call(
    limiter: QuotaLimiter, clock: FakeMonotonic
) -> None:
    limiter.configure("custom", {"MeterUsage": 0.5})
    assert admitted(limiter, 3, "MeterUsage") == 1
    clock.now += 1
    assert admitted(limiter, 3, "MeterUsage") == 0
    clock.now += 1
    assert admitted(limiter, 3, "MeterUsage") == 1


def test_configure_forgets_the_buckets(limiter: QuotaLimiter) -> None:
    assert admitted(limiter, 11, "MeterUsage") == 10
    limiter.configure("aws")
    assert admitted(limiter, 11, "MeterUsage") == 10


def test_switching_off_admits_everything_again(limiter: QuotaLimiter) -> None:
    assert admitted(limiter, 11, "MeterUsage") == 10
    limiter.configure("off")
    assert limiter.state_json() == {"profile": "off", "rates": {}}
    assert admitted(limiter, 100, "MeterUsage") == 100


def test_a_clock_going_backwards_refills_nothing(
    limiter: QuotaLimiter, clock: FakeMonotonic
) -> None:
    assert admitted(limiter, 10, "MeterUsage") == 10
    clock.now -= 5
    assert admitted(limiter, 1, "MeterUsage") == 0


@pytest.mark.parametrize(
    ("profile", "rates", "field", "message"),
    [
        ("strict", None, "profile", "must be one of off, aws, custom"),
        ("custom", None, "rates", 'the "custom" profile needs at least one rate'),
        ("custom", {}, "rates", 'the "custom" profile needs at least one rate'),
        ("off", {"MeterUsage": 1}, "rates", 'the "off" profile takes no rates'),
        (
            "aws",
            {"PutObject": 1},
            "rates.PutObject",
            "unknown operation; one of BatchMeterUsage, MeterUsage, RegisterUsage, ResolveCustomer",
        ),
        ("aws", {"MeterUsage": 0}, "rates.MeterUsage", "must be a finite number greater than 0"),
        (
            "custom",
            {"MeterUsage": -2},
            "rates.MeterUsage",
            "must be a finite number greater than 0",
        ),
        (
            "custom",
            {"MeterUsage": float("inf")},
            "rates.MeterUsage",
            "must be a finite number greater than 0",
        ),
        (
            "custom",
            {"MeterUsage": float("nan")},
            "rates.MeterUsage",
            "must be a finite number greater than 0",
        ),
        ("custom", {"MeterUsage": True}, "rates.MeterUsage", "must be a number"),
        ("custom", {"MeterUsage": "10"}, "rates.MeterUsage", "must be a number"),
        (
            "custom",
            ["MeterUsage"],
            "rates",
            "must be an object of operation name to calls per second",
        ),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    limiter: QuotaLimiter, profile: str, rates: Mapping[str, float] | None, field: str, message: str
) -> None:
    with pytest.raises(Refusal) as refused:
        limiter.configure(profile, rates)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert limiter.state_json()["profile"] == "aws"


def test_concurrent_calls_share_one_bucket(limiter: QuotaLimiter) -> None:
    barrier = threading.Barrier(8)

    def call_many() -> int:
        barrier.wait()
        return admitted(limiter, 50, "MeterUsage")

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(lambda _: call_many(), range(8))) == 10
