"""Id generators, injected: MeteringRecordIds and request ids are UUIDs in production and
predictable sequences in tests."""

from __future__ import annotations

import itertools
import uuid
from typing import Protocol

__all__ = ["IdGenerator", "RandomIds", "SequentialIds"]


class IdGenerator(Protocol):
    def __call__(self) -> str:
        """A new id, never returned before."""
        ...


class RandomIds:
    """Random (version 4) UUIDs."""

    def __call__(self) -> str:
        return str(uuid.uuid4())


class SequentialIds:
    """``00000000-0000-4000-8000-000000000001``, ``...0002``, ...: UUID-shaped and predictable."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def __call__(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._counter):012d}"
