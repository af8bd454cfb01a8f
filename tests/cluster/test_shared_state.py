"""``cluster.shared_state``: what the coordinator publishes, a worker reads back exactly (the
service clock to the microsecond, the bench's idleness), through a real shared file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from marketmeter.cluster.shared_state import SharedState, StampedClock
from marketmeter.metering.clock import FixedClock, ServiceClock
from marketmeter.testbench.controls import BenchControls, QuotaProfile
from marketmeter.testbench.faults import parse_rule

WALL = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_worker_reads_the_coordinators_clock_and_idleness_exactly(tmp_path: Path) -> None:
    coordinator = SharedState(str(tmp_path / "state"), create=True)
    worker = SharedState(str(tmp_path / "state"))
    clock = ServiceClock(FixedClock(WALL))
    stamped = StampedClock(worker)

    coordinator.publish_from(clock, idle=True)
    assert worker.read() == (0, 0, 1)
    assert worker.idle

    frozen = datetime(2021, 6, 1, 12, 0, 0, 7, tzinfo=UTC)
    clock.set(frozen, frozen=True)
    coordinator.publish_from(clock, idle=False)
    assert stamped.now() == frozen
    assert not worker.idle

    clock.reset()
    clock.shift(timedelta(days=-3, microseconds=5))
    coordinator.publish_from(clock, idle=True)
    mode, micros, idle = worker.read()
    assert (mode, micros, idle) == (1, (-3 * 86400) * 1_000_000 + 5, 1)
    before = datetime.now(UTC)
    read = stamped.now()
    assert before - timedelta(days=3) <= read <= datetime.now(UTC) - timedelta(days=3, seconds=-1)

    coordinator.close()
    worker.close()


def test_the_bench_is_idle_only_without_rule_latency_or_quota() -> None:
    bench = BenchControls()
    assert bench.idle
    bench.faults.add_rules(
        [parse_rule({"operation": "MeterUsage", "error": {"code": "ThrottlingException"}})]
    )
    assert not bench.idle
    bench.faults.clear()
    bench.faults.latency_ms = 5
    assert not bench.idle
    bench.reset()
    assert bench.idle
    assert not BenchControls(startup_quota=QuotaProfile("aws")).idle
