"""The service clock, injected wherever time matters (windows, agreements, token expiry).

Never patched: rule tests pass a ``FixedClock``; the server passes a ``ServiceClock``, which
runs on wall time until the admin API freezes, sets, offsets or advances it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

__all__ = [
    "Clock",
    "ClockState",
    "FixedClock",
    "ServiceClock",
    "SystemClock",
    "WallClock",
]

WallClock = Callable[[], float]
"""The machine's time in epoch seconds (``time.time``), where the service clock must not
be used (delivery retries, signature dates)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, an aware UTC datetime."""
        ...


class SystemClock:
    """Wall time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put: for tests."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


@dataclass(frozen=True, slots=True)
class ClockState:
    """What the service clock reads and how it runs: ``system`` (wall time), ``offset`` (wall
    time plus ``offset``) or ``frozen`` (standing still at ``now``)."""

    now: datetime
    mode: Literal["system", "offset", "frozen"]
    offset: timedelta


class ServiceClock:
    """The server's controllable clock (thread-safe). Wall time comes from ``wall``."""

    def __init__(self, wall: Clock | None = None) -> None:
        self._wall = wall or SystemClock()
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return self._wall.now() + self._offset

    def state(self) -> ClockState:
        with self._lock:
            if self._frozen is not None:
                return ClockState(self._frozen, "frozen", self._frozen - self._wall.now())
            mode: Literal["system", "offset"] = "offset" if self._offset else "system"
            return ClockState(self._wall.now() + self._offset, mode, self._offset)

    def set(self, at: datetime, frozen: bool) -> None:
        """Read ``at`` from now on: standing still there, or running on from it."""
        at = at.astimezone(UTC)
        with self._lock:
            if frozen:
                self._frozen = at
            else:
                self._frozen = None
                self._offset = at - self._wall.now()

    def freeze(self) -> None:
        """Stop where the clock reads now."""
        with self._lock:
            if self._frozen is None:
                self._frozen = self._wall.now() + self._offset

    def shift(self, offset: timedelta) -> None:
        """Run at wall time plus ``offset``."""
        with self._lock:
            self._frozen = None
            self._offset = offset

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta`` (backward if negative), frozen or running."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def reset(self) -> None:
        """Back to wall time."""
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)
