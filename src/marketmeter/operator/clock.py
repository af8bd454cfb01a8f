"""The service clock's operator actions: read it, set it, offset it, freeze it, advance it,
reset it; the JSON shapes in and out, checked here with a ``Refusal`` naming the field. Only a
``ServiceClock`` can be moved; every window, token expiry and key rotation follows it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from marketmeter.metering.clock import Clock, ClockState, ServiceClock
from marketmeter.operator.inputs import iso, parse_time
from marketmeter.refusal import Refusal

__all__ = ["EARLIEST", "LATEST", "ClockOperations", "advance_clock", "clock_json", "set_clock"]

# The times the service clock may be moved to: far enough apart for any test, far enough from
# datetime's limits that a running clock never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _reachable(field: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise Refusal(field, "the clock must stay between 1970 and 9000")
    return moment


def clock_json(state: ClockState) -> dict[str, Any]:
    epoch = state.now.timestamp()
    return {
        "now": iso(epoch),
        "epoch": epoch,
        "mode": state.mode,
        "offsetSeconds": state.offset.total_seconds(),
    }


def _seconds(body: dict[str, Any], field: str) -> float:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refusal(field, "must be a finite number of seconds")
    return float(value)


def set_clock(clock: ServiceClock, body: Any) -> None:
    """``{"time": T, "frozen": true|false}`` (frozen by default), ``{"offsetSeconds": N}`` or
    ``{"frozen": true}`` (stop where the clock reads now)."""
    if not isinstance(body, dict):
        raise Refusal("body", "must be a JSON object")
    known = {"time", "frozen", "offsetSeconds"}
    for name in body:
        if name not in known:
            raise Refusal(name, f"unknown field; known: {', '.join(sorted(known))}")
    frozen = body.get("frozen", True)
    if not isinstance(frozen, bool):
        raise Refusal("frozen", "must be true or false")
    if "time" in body:
        if "offsetSeconds" in body:
            raise Refusal("offsetSeconds", "give either time or offsetSeconds")
        text = body["time"]
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise Refusal("time", "must be ISO 8601 text or epoch seconds")
        epoch = parse_time("time", str(text))
        try:
            moment = datetime.fromtimestamp(epoch, UTC)
        except (OverflowError, OSError, ValueError):
            raise Refusal("time", f"{text!r} is out of range") from None
        clock.set(_reachable("time", moment), frozen=frozen)
    elif "offsetSeconds" in body:
        offset = _seconds(body, "offsetSeconds")
        if abs(offset) > 100 * 365 * 86400:
            raise Refusal("offsetSeconds", "must be within 100 years")
        _reachable("offsetSeconds", datetime.now(UTC) + timedelta(seconds=offset))
        clock.shift(timedelta(seconds=offset))
        if frozen and "frozen" in body:
            clock.freeze()
    elif frozen and "frozen" in body:
        clock.freeze()
    else:
        raise Refusal("time", "give time, offsetSeconds or frozen: true")


def advance_clock(clock: ServiceClock, body: Any) -> None:
    """``{"seconds": N}``: move the clock by N seconds (negative moves it back)."""
    if not isinstance(body, dict):
        raise Refusal("body", "must be a JSON object")
    seconds = _seconds(body, "seconds")
    if abs(seconds) > 100 * 365 * 86400:
        raise Refusal("seconds", "must be within 100 years")
    delta = timedelta(seconds=seconds)
    _reachable("seconds", clock.now() + delta)
    clock.advance(delta)


class ClockOperations:
    """The clock of one server (``clock``); each action answers the clock's state."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def _movable(self) -> ServiceClock:
        if not isinstance(self.clock, ServiceClock):
            raise Refusal("clock", "this server's clock cannot be moved")
        return self.clock

    def state(self) -> dict[str, Any]:
        if isinstance(self.clock, ServiceClock):
            return clock_json(self.clock.state())
        return clock_json(ClockState(self.clock.now(), "frozen", timedelta(0)))

    def set(self, body: Any) -> dict[str, Any]:
        """``{"time", "frozen"}``, ``{"offsetSeconds"}`` or ``{"frozen": true}``."""
        clock = self._movable()
        set_clock(clock, body)
        return clock_json(clock.state())

    def advance(self, body: Any) -> dict[str, Any]:
        """``{"seconds": N}``."""
        clock = self._movable()
        for name in body if isinstance(body, dict) else ():
            if name != "seconds":
                raise Refusal(name, "unknown field; known: seconds")
        advance_clock(clock, body)
        return clock_json(clock.state())

    def reset(self) -> dict[str, Any]:
        """Back to wall time."""
        clock = self._movable()
        clock.reset()
        return clock_json(clock.state())
