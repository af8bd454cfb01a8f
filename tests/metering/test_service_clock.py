"""The server's controllable clock (``ServiceClock``): set frozen or running, shift, advance,
freeze and reset, with its reported state, over an injected wall clock (``FixedClock``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from marketmeter.metering.clock import ClockState, FixedClock, ServiceClock, SystemClock

WALL = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
T1 = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def wall() -> FixedClock:
    return FixedClock(WALL)


@pytest.fixture
def clock(wall: FixedClock) -> ServiceClock:
    return ServiceClock(wall=wall)


def test_runs_on_wall_time_by_default(clock: ServiceClock, wall: FixedClock) -> None:
    assert clock.now() == WALL
    assert clock.state() == ClockState(WALL, "system", timedelta(0))
    wall.advance(timedelta(seconds=7))
    assert clock.now() == WALL + timedelta(seconds=7)
    assert clock.state() == ClockState(WALL + timedelta(seconds=7), "system", timedelta(0))


def test_without_a_wall_clock_it_reads_system_time() -> None:
    before = SystemClock().now()
    read = ServiceClock().now()
    after = SystemClock().now()
    assert before <= read <= after
    assert read.tzinfo is UTC


def test_set_frozen_stands_still(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=True)
    assert clock.now() == T1
    wall.advance(timedelta(hours=1))
    assert clock.now() == T1
    assert clock.state() == ClockState(T1, "frozen", T1 - WALL - timedelta(hours=1))


def test_set_running_runs_on_from_there(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=False)
    assert clock.now() == T1
    wall.advance(timedelta(seconds=10))
    assert clock.now() == T1 + timedelta(seconds=10)
    assert clock.state() == ClockState(T1 + timedelta(seconds=10), "offset", T1 - WALL)


def test_set_running_unfreezes(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=True)
    clock.set(WALL - timedelta(minutes=1), frozen=False)
    wall.advance(timedelta(seconds=30))
    assert clock.now() == WALL - timedelta(seconds=30)
    assert clock.state().mode == "offset"
    assert clock.state().offset == timedelta(minutes=-1)


def test_set_to_the_wall_time_running_is_system_mode(clock: ServiceClock) -> None:
    clock.set(T1, frozen=False)
    clock.set(WALL, frozen=False)
    assert clock.state() == ClockState(WALL, "system", timedelta(0))


def test_set_converts_other_zones_to_utc(clock: ServiceClock) -> None:
    plus_two = datetime(2030, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    clock.set(plus_two, frozen=True)
    assert clock.now() == T1
    assert clock.now().tzinfo is UTC
    assert clock.now().isoformat() == "2030-01-01T00:00:00+00:00"


def test_shift_runs_at_an_offset_and_unfreezes(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=True)
    clock.shift(timedelta(hours=-2))
    assert clock.now() == WALL - timedelta(hours=2)
    wall.advance(timedelta(seconds=5))
    assert clock.state() == ClockState(
        WALL - timedelta(hours=2) + timedelta(seconds=5), "offset", timedelta(hours=-2)
    )
    clock.shift(timedelta(0))
    assert clock.state() == ClockState(WALL + timedelta(seconds=5), "system", timedelta(0))


def test_advance_while_frozen_moves_the_frozen_time(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=True)
    clock.advance(timedelta(hours=4))
    assert clock.now() == T1 + timedelta(hours=4)
    clock.advance(timedelta(seconds=-30))
    assert clock.now() == T1 + timedelta(hours=4, seconds=-30)
    wall.advance(timedelta(days=1))
    assert clock.state().mode == "frozen"
    assert clock.now() == T1 + timedelta(hours=4, seconds=-30)


def test_advance_while_running_adds_to_the_offset(clock: ServiceClock, wall: FixedClock) -> None:
    clock.advance(timedelta(minutes=90))
    assert clock.state() == ClockState(
        WALL + timedelta(minutes=90), "offset", timedelta(minutes=90)
    )
    wall.advance(timedelta(seconds=1))
    assert clock.now() == WALL + timedelta(minutes=90, seconds=1)
    clock.advance(timedelta(minutes=-90))
    assert clock.state() == ClockState(WALL + timedelta(seconds=1), "system", timedelta(0))


def test_freeze_stops_where_the_clock_reads(clock: ServiceClock, wall: FixedClock) -> None:
    clock.shift(timedelta(hours=1))
    clock.freeze()
    stopped = WALL + timedelta(hours=1)
    assert clock.now() == stopped
    wall.advance(timedelta(minutes=10))
    assert clock.state() == ClockState(stopped, "frozen", timedelta(minutes=50))
    clock.freeze()  # already frozen: stays put
    assert clock.now() == stopped


def test_reset_goes_back_to_wall_time(clock: ServiceClock, wall: FixedClock) -> None:
    clock.set(T1, frozen=True)
    clock.reset()
    assert clock.state() == ClockState(WALL, "system", timedelta(0))
    clock.shift(timedelta(days=3))
    clock.reset()
    wall.advance(timedelta(seconds=2))
    assert clock.state() == ClockState(WALL + timedelta(seconds=2), "system", timedelta(0))


def test_concurrent_advances_are_all_counted(clock: ServiceClock) -> None:
    def work() -> None:
        for _ in range(500):
            clock.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.state() == ClockState(
        WALL + timedelta(seconds=4000), "offset", timedelta(seconds=4000)
    )


def test_fixed_clock_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="FixedClock needs an aware datetime"):
        FixedClock(datetime(2026, 11, 23, 12, 30))
