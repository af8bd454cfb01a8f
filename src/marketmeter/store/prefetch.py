"""Running an iterator one step ahead, in a thread of its own.

A streamed catalog apply alternates two kinds of work: reading and checking the next chunk of
entries (Python, holding the GIL) and writing the chunk before it. On PostgreSQL the writing
is mostly waiting without the GIL (round trips, its server's own CPU, the commit's fsync):
``prefetched`` lets the reading go on meanwhile, so the apply takes about as long as the longer
of the two rather than their sum. (SQLite's steps release the GIL row by row: a thread reading
beside them would take it from them at every row, so there the chunks are read in turn.) At
most ``ahead`` items wait in between: what the apply holds grows by that many chunks, never
with the document.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_DONE = object()
_POLL = 0.1  # seconds between checks that the consumer still wants items


class _Failed:
    """What iterating the source raised, handed to the consumer in its place."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(source: Iterable[T], ahead: int = 1) -> Generator[T, None, None]:
    """The items of ``source`` in order, computed in a daemon thread up to ``ahead`` items
    before the consumer asks; what iterating ``source`` raises is raised here, after the items
    before it. Closing this iterator (or dropping it) stops the thread at its next item."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stopped = threading.Event()

    def put(item: object) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as error:  # handed over, raised in the consumer
            put(_Failed(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="marketmeter-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
