"""The one SQLite writer: a thread that owns the write connection and commits in groups.

Every write is a *job* (a function of the connection) put on a queue. The thread takes all
jobs waiting, runs them in one ``BEGIN IMMEDIATE`` transaction, each inside its own savepoint
(a failing job is rolled back alone), commits once, and only then completes the jobs' futures.
So nothing is acknowledged before its commit, and one fsync serves many requests (group commit:
the performance notes show it makes ``synchronous=FULL`` nearly as cheap as ``NORMAL``). No
event loop ever waits on SQLite's write lock.

``submit_async`` is the event loop's way in: its futures are completed with one
``call_soon_threadsafe`` per loop and group (not one wake-up per job). A job marked ``atomic``
(a single statement, which SQLite rolls back whole when it fails, and reads) runs without a
savepoint of its own. ``on_commit`` runs on the writer thread after every commit (the catalog
stamp's publisher, ``store.catalog_stamp``); ``between_groups`` after every group, once its
jobs are answered (the log's checkpoints, ``store.sqlite_checkpoints``).

**Merged jobs.** A job submitted with a ``merge`` function (``submit_async``'s ``merge``: the
ledger's bills) runs together with the jobs next to it in the group that name the same one:
one call of ``merge`` with all their payloads, in queue order. The thread takes the GIL back
after every statement, and an event loop busy in the same process makes it wait each time, so
one statement for a group's bills instead of one per request nearly doubles what the writer
commits beside a busy loop (docs/performance.md). The call runs in a savepoint: if ``merge``
fails, what it wrote is rolled back and each job runs alone, so a failure stays with its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from marketmeter.store.job_groups import next_group

__all__ = ["SQLiteWriter"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_MAX_GROUP = 512

# what jobs of one group submitted with the same merge function run as: one call for all
# their payloads in queue order, one result per payload
Merge = Callable[[sqlite3.Connection, list[Any]], list[Any]]


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    future: Future[Any] | None  # a blocking caller's
    waiter: asyncio.Future[Any] | None = None  # an event loop's (submit_async)
    atomic: bool = False
    merge: Merge | None = None
    payload: Any = None

    def start(self) -> bool:
        """False if the caller gave up before the job ran (it is then not run)."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return self.waiter is not None and not self.waiter.cancelled()


class SQLiteWriter:
    """Runs write jobs on one connection in one thread; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        committed: Callable[[int, float], None] | None = None,
        on_commit: Callable[[sqlite3.Connection], None] | None = None,
        between_groups: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._connect = connect
        self._between_groups = between_groups
        # told of each group commit: jobs queued when it began (its own included), seconds
        self.committed = committed
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="marketmeter-writer", daemon=True)
        self._closed = False
        self._thread.start()
        self._ready.result()  # re-raises a failure to open the database

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``work``; its future completes after the transaction holding it commits."""
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(RuntimeError("the store is closed"))
            return future
        self._queue.put(_Job(work, future))
        return future

    def submit_async(
        self,
        work: Callable[[sqlite3.Connection], T],
        atomic: bool = False,
        merge: Merge | None = None,
        payload: Any = None,
    ) -> asyncio.Future[T]:
        """``submit`` for the running event loop: the future completes on it after the commit.
        With ``merge``, ``work`` is the job alone and ``payload`` what ``merge`` is given for it
        beside its neighbours (see the module docstring)."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._closed:
            waiter.set_exception(RuntimeError("the store is closed"))
            return waiter
        self._queue.put(_Job(work, None, waiter, atomic, merge, payload))
        return waiter

    def close(self) -> None:
        """Run every job already queued, commit, and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:  # reported to the constructor
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                group, stopping = next_group(self._queue, first, _one, _MAX_GROUP)
                queued = len(group) + self._queue.qsize()
                started = time.perf_counter()
                _commit_group(connection, group, self._on_commit)
                if self.committed is not None:
                    self.committed(queued, time.perf_counter() - started)
                if self._between_groups is not None:
                    try:
                        self._between_groups(connection)
                    except Exception:  # the writer goes on: its jobs matter more
                        log.exception("between-groups hook failed")
        finally:
            connection.close()


def _commit_group(
    connection: sqlite3.Connection,
    group: list[_Job],
    on_commit: Callable[[sqlite3.Connection], None] | None,
) -> None:
    """Run and commit the group; after the commit and before any job is acknowledged, run
    ``on_commit`` (so what it publishes is visible once a caller learns of its commit)."""
    jobs = [job for job in group if job.start()]
    if not jobs:
        return
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        _settle([(job, None, error) for job in jobs])
        return
    outcomes: list[tuple[_Job, Any, BaseException | None]] = []
    start = 0
    while start < len(jobs):
        merge = jobs[start].merge
        end = start + 1
        while merge is not None and end < len(jobs) and jobs[end].merge is merge:
            end += 1
        if end - start > 1:
            outcomes += _run_merged(connection, jobs[start:end])
        else:
            outcomes.append(_run_alone(connection, jobs[start]))
        start = end
    try:
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        log.error("commit failed; %d jobs not acknowledged: %s", len(jobs), error)
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        _settle([(job, None, error) for job in jobs])
        return
    if on_commit is not None:
        try:
            on_commit(connection)
        except Exception:
            log.exception("after-commit hook failed")
    _settle(outcomes)


def _run_alone(connection: sqlite3.Connection, job: _Job) -> tuple[_Job, Any, BaseException | None]:
    """The job in a savepoint of its own (none if it is ``atomic``): its result or failure."""
    if job.atomic:
        try:
            return job, job.work(connection), None
        except BaseException as error:
            return job, None, error
    connection.execute("SAVEPOINT job")
    try:
        result = job.work(connection)
    except BaseException as error:
        connection.execute("ROLLBACK TO job")
        connection.execute("RELEASE job")
        return job, None, error
    connection.execute("RELEASE job")
    return job, result, None


def _run_merged(
    connection: sqlite3.Connection, run: list[_Job]
) -> list[tuple[_Job, Any, BaseException | None]]:
    """Jobs of one ``merge`` in one call of it, in a savepoint; each alone if it fails."""
    merge = run[0].merge
    assert merge is not None
    connection.execute("SAVEPOINT merged")
    try:
        results = merge(connection, [job.payload for job in run])
    except Exception:
        log.warning("%d merged jobs failed together: each runs alone", len(run), exc_info=True)
        connection.execute("ROLLBACK TO merged")
        connection.execute("RELEASE merged")
        return [_run_alone(connection, job) for job in run]
    connection.execute("RELEASE merged")
    return [(job, result, None) for job, result in zip(run, results, strict=True)]


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """Complete the jobs' futures: blocking ones at once, each event loop's in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for job, result, failure in outcomes:
        if job.waiter is not None:
            by_loop.setdefault(job.waiter.get_loop(), []).append((job.waiter, result, failure))
        elif job.future is not None:
            if failure is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(failure)
    for loop, waiters in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_complete, waiters)


def _complete(waiters: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for waiter, result, failure in waiters:
        if waiter.done():
            continue
        if failure is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(failure)


def _one(job: _Job) -> int:
    return 1
