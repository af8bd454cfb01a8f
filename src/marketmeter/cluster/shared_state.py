"""The coordinator's service clock and whether its test bench is idle, shared with the workers
through memory, as ``store.catalog_stamp`` shares the catalog's version.

A small file in the server's runtime directory holds, as little-endian 64-bit integers: a
sequence number (odd while a write is under way), the clock's mode (0 wall time, 1 offset,
2 frozen), its offset or frozen time in microseconds, and a flag that is 1 when the bench is
idle (no fault rule, no global latency, quota off). Only the coordinator writes it, before it
answers the admin call that changed any of it (``SharedState.publish``, called as each of its
answers starts); a worker reads it on every request (``StampedClock``, ``SharedState.idle``),
a few hundred nanoseconds, retrying while the sequence number is odd or moved (a seqlock).

A state that changes without an admin call (a fault rule that stops firing after its count)
only ever turns the bench idle, never busy: a worker reading "busy" a little longer than it
must hands calls to the coordinator, which is always exact.
"""

from __future__ import annotations

import mmap
import os
import struct
from datetime import UTC, datetime, timedelta

from marketmeter.metering.clock import ClockState, ServiceClock

__all__ = ["SharedState", "StampedClock"]

_LAYOUT = struct.Struct("<qqqq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODES = {"system": 0, "offset": 1, "frozen": 2}
_MICROSECOND = timedelta(microseconds=1)


def _micros(delta: timedelta) -> int:
    return delta // _MICROSECOND


class SharedState:
    """One process's mapping of the state file at ``path`` (created by the coordinator)."""

    def __init__(self, path: str, create: bool = False) -> None:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        descriptor = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(descriptor, _LAYOUT.size)
            self._map = mmap.mmap(descriptor, _LAYOUT.size)
        finally:
            os.close(descriptor)
        self._last: tuple[int, int, int] | None = None

    def publish(self, clock: ClockState, idle: bool) -> None:
        """Write the clock's state and the bench's idleness, if they changed (coordinator)."""
        value = _micros(clock.now - _EPOCH) if clock.mode == "frozen" else _micros(clock.offset)
        current = (_MODES[clock.mode], value, int(idle))
        if current == self._last:
            return
        sequence = _LAYOUT.unpack_from(self._map)[0]
        struct.pack_into("<q", self._map, 0, sequence + 1)  # odd: being written
        _LAYOUT.pack_into(self._map, 0, sequence + 1, *current)
        struct.pack_into("<q", self._map, 0, sequence + 2)
        self._last = current

    def publish_from(self, clock: ServiceClock, idle: bool) -> None:
        self.publish(clock.state(), idle)

    def read(self) -> tuple[int, int, int]:
        """Mode, microseconds, idle flag: one consistent reading."""
        while True:
            sequence, mode, value, idle = _LAYOUT.unpack_from(self._map)
            if not sequence & 1 and _LAYOUT.unpack_from(self._map)[0] == sequence:
                return mode, value, idle

    @property
    def idle(self) -> bool:
        return bool(self.read()[2])

    def close(self) -> None:
        self._map.close()


class StampedClock:
    """A worker's service clock: wall time moved as the coordinator's ``ServiceClock`` is."""

    def __init__(self, state: SharedState) -> None:
        self._state = state

    def now(self) -> datetime:
        mode, value, _ = self._state.read()
        if mode == 2:
            return _EPOCH + timedelta(microseconds=value)
        wall = datetime.now(UTC)
        return wall + timedelta(microseconds=value) if mode == 1 else wall
