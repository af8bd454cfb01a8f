"""The one SQLite writer: a thread that owns the write connection and commits in groups.

Every write is a *job* (a function of the connection) put on a queue. The thread takes all
jobs waiting, runs them in one ``BEGIN IMMEDIATE`` transaction, each inside its own savepoint
(a failing job is rolled back alone), commits once, and only then completes the jobs' futures.
So nothing is acknowledged before its commit, and one fsync serves many requests (group commit:
the performance notes show it makes ``synchronous=FULL`` nearly as cheap as ``NORMAL``). No
event loop ever waits on SQLite's write lock.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["SQLiteWriter"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_MAX_GROUP = 512


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    future: Future[Any]


class SQLiteWriter:
    """Runs write jobs on one connection in one thread; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        committed: Callable[[int, float], None] | None = None,
    ) -> None:
        self._connect = connect
        # told of each group commit: jobs queued when it began (its own included), seconds
        self.committed = committed
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
                group = [first]
                while len(group) < _MAX_GROUP:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    group.append(job)
                queued = len(group) + self._queue.qsize()
                started = time.perf_counter()
                _commit_group(connection, group)
                if self.committed is not None:
                    self.committed(queued, time.perf_counter() - started)
        finally:
            connection.close()


def _commit_group(connection: sqlite3.Connection, group: list[_Job]) -> None:
    jobs = [job for job in group if job.future.set_running_or_notify_cancel()]
    if not jobs:
        return
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        for job in jobs:
            job.future.set_exception(error)
        return
    outcomes: list[tuple[_Job, Any, BaseException | None]] = []
    for job in jobs:
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
        for job in jobs:
            job.future.set_exception(error)
        return
    for job, result, failure in outcomes:
        if failure is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(failure)
