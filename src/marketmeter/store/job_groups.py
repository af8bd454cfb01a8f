"""A writer thread's next group of jobs (group commit): the job it waited for, then every job
already queued, up to a bound, stopping at the queue's stop sentinel (``None``). The SQLite
writer (``store.sqlite_writer``) bounds a group by its jobs, PostgreSQL's biller
(``store.postgres_biller``) by their rows."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TypeVar

__all__ = ["next_group"]

T = TypeVar("T")


def next_group(
    jobs: queue.SimpleQueue[T | None], first: T, weight: Callable[[T], int], bound: int
) -> tuple[list[T], bool]:
    """``first`` and the jobs queued behind it while their total ``weight`` is under
    ``bound``; and whether the stop sentinel came (the thread stops after this group)."""
    group, total = [first], weight(first)
    while total < bound:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            return group, True
        group.append(job)
        total += weight(job)
    return group, False
