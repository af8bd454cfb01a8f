"""Id generators, injected: MeteringRecordIds and request ids are UUIDs in production and
predictable sequences in tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Protocol

__all__ = ["IdGenerator", "RandomIds", "SequentialIds"]


class IdGenerator(Protocol):
    def __call__(self) -> str:
        """A new id, never returned before."""
        ...


# The first hex digit of a version 4 UUID's fourth group carries the variant (binary 10xx).
_VARIANT = {f"{n:x}": f"{8 | (n & 3):x}" for n in range(16)}


# Ids drawn per read of the system's random source (one system call, not one per id).
_POOL = 256
# Bumped in a forked child, so that it never hands out ids its parent had drawn already.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


def _fresh_ids(count: int) -> list[str]:
    raw = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = raw[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return ids


class RandomIds:
    """Random (version 4) UUIDs, written straight from random bytes: one is needed per billed
    record, and ``str(uuid.uuid4())`` costs several times as much. They are drawn 256 at a
    time; taking one is a list iterator's ``next`` (atomic, so threads never share one)."""

    def __init__(self) -> None:
        self._pool: Iterator[str] = iter(())
        self._forks = _forks

    def __call__(self) -> str:
        found = next(self._pool, None)
        if found is None or self._forks != _forks:
            self._forks = _forks
            self._pool = iter(_fresh_ids(_POOL))
            found = next(self._pool)
        return found


class SequentialIds:
    """``00000000-0000-4000-8000-000000000001``, ``...0002``, ...: UUID-shaped and predictable."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def __call__(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._counter):012d}"
