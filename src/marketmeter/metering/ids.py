"""Id generators, injected: MeteringRecordIds and request ids are UUIDs in production and
predictable sequences in tests."""

from __future__ import annotations

import itertools
import os
from typing import Protocol

__all__ = ["IdGenerator", "RandomIds", "SequentialIds"]


class IdGenerator(Protocol):
    def __call__(self) -> str:
        """A new id, never returned before."""
        ...


# The first hex digit of a version 4 UUID's fourth group carries the variant (binary 10xx).
_VARIANT = {f"{n:x}": f"{8 | (n & 3):x}" for n in range(16)}


class RandomIds:
    """Random (version 4) UUIDs, written straight from 16 random bytes: one is needed per
    billed record, and ``str(uuid.uuid4())`` costs several times as much."""

    def __call__(self) -> str:
        h = os.urandom(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class SequentialIds:
    """``00000000-0000-4000-8000-000000000001``, ``...0002``, ...: UUID-shaped and predictable."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def __call__(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._counter):012d}"
