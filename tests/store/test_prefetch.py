"""store.prefetch: an iterator run one step ahead in a thread, its items and its error in
order, and its thread stopped when the consumer stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from marketmeter.store.prefetch import prefetched


def test_items_in_order_then_the_error_the_source_raised() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the document has a problem")

    items = prefetched(source())
    assert [next(items), next(items)] == [1, 2]
    with pytest.raises(ValueError, match="the document has a problem"):
        next(items)


def test_runs_at_most_ahead_items_before_the_consumer() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for item in range(10):
            produced.append(item)
            yield item

    items = prefetched(source(), ahead=1)
    assert next(items) == 0
    time.sleep(0.3)
    # 0 taken, 1 waiting in the hand-off, 2 made and waiting to be put
    assert produced == [0, 1, 2]
    assert list(items) == list(range(1, 10))


def test_closing_stops_the_thread() -> None:
    def source() -> Iterator[int]:
        yield from range(1_000_000)

    before = threading.active_count()
    items = prefetched(source())
    assert next(items) == 0
    items.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before
