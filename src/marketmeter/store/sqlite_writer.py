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
stamp's publisher, ``store.catalog_stamp``).
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


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    future: Future[Any] | None  # a blocking caller's
    waiter: asyncio.Future[Any] | None = None  # an event loop's (submit_async)
    atomic: bool = False

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
    ) -> None:
        self._connect = connect
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
        self, work: Callable[[sqlite3.Connection], T], atomic: bool = False
    ) -> asyncio.Future[T]:
        """``submit`` for the running event loop: the future completes on it after the commit."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._closed:
            waiter.set_exception(RuntimeError("the store is closed"))
            return waiter
        self._queue.put(_Job(work, None, waiter, atomic))
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
    for job in jobs:
        if job.atomic:
            try:
                outcomes.append((job, job.work(connection), None))
            except BaseException as error:
                outcomes.append((job, None, error))
            continue
        connection.execute("SAVEPOINT job")
        try:
            result = job.work(connection)
        except BaseException as error:
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            outcomes.append((job, None, error))
        else:
            connection.execute("RELEASE job")
            outcomes.append((job, result, None))
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
