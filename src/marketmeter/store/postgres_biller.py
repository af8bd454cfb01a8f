"""Billing on PostgreSQL in groups: many requests' rows in one statement, one commit.

Bill jobs (one request's ledger rows, ``store.ledger_rows``) from every request in flight on
this node wait in one queue. A few flusher threads take every job waiting (up to
``MAX_GROUP_ROWS`` rows) and bill the whole group in **one statement** on a pooled connection
in autocommit: one round trip, one transaction, whose ``COMMIT`` (``synchronous_commit=on``) is
part of it. Only then are the jobs answered. So one WAL flush serves many requests, as the
SQLite writer's group commit does (``store.sqlite_writer``).

- **The statement.** The group's rows, job after job, are unnested and inserted in that order
  (``ON CONFLICT (dedupe key) DO NOTHING RETURNING seq``). When every row was new (the usual
  case) its row count says so and nothing is read back. Otherwise one more statement reads
  what the ledger holds for the group's keys, and a row was written for an entry if its
  ``seq`` is one the insert returned and no earlier entry of the group claimed it (as
  ``store.sqlite._bill``).
- **Dedupe within a group** is that of jobs committed one after the other: the first entry of a
  key (in job order, then in request order) bills, and a later one, of the same job or another,
  is answered with the first one's id and quantity, as a retry would be.
- **Across nodes**, as before: another node's insert of the same key makes this one wait for
  its commit and skip the key; the read that follows this commit sees the other's row. Two
  groups inserting overlapping keys in different orders may deadlock: PostgreSQL aborts one
  statement whole and it is run again (``RETRIES`` times in all).
- **Failures stay with their job.** If the group's statement fails for any other reason, each
  job is billed again alone; a job that still fails gets the error, the others their outcomes.
  Only when the database is out of reach (a connection lost or not had in time, a shutdown)
  does every job of the group get that error at once, since each would alone. Nothing is
  written twice: a statement that failed wrote nothing, a key already billed is never billed
  again, and nothing is answered before its commit.
- An event loop's futures are completed in one ``call_soon_threadsafe`` per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from marketmeter.metering.types import LedgerOutcome
from marketmeter.store.base import WriteObserver
from marketmeter.store.job_groups import next_group
from marketmeter.store.ledger_rows import LEDGER_COLUMNS, LedgerRow, each_request

__all__ = ["MAX_GROUP_ROWS", "RETRIES", "BillResult", "PostgresBiller", "bill_group"]

log = logging.getLogger(__name__)

MAX_GROUP_ROWS = 4000  # a group stops growing past this many rows (a job is never split)
RETRIES = 3  # runs of a statement PostgreSQL aborted for a deadlock or serialization failure

_TYPES = (
    "bigint[]",
    "text[]",
    "text[]",
    "text[]",
    "bigint[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "float8[]",
    "text[]",
    "float8[]",
    "text[]",
    "text[]",
)
_KEY = "hour, scope, customer_account, dimension"
_INSERT = (
    f"INSERT INTO usage_records ({LEDGER_COLUMNS}) "
    f"SELECT {LEDGER_COLUMNS} FROM unnest("
    # binary parameters: a third of the client's CPU of text ones (arrays of 14 columns)
    + ", ".join(f"%b::{t}" for t in _TYPES)
    + f") WITH ORDINALITY AS t({LEDGER_COLUMNS}, ord) "
    # group order: the first entry of a key is the one inserted (the usage view lists ties
    # in it too)
    "ORDER BY ord "
    f"ON CONFLICT ({_KEY}) DO NOTHING RETURNING seq"
)
_HELD = (
    "SELECT t.ord, u.seq, u.metering_record_id, u.quantity_micros "
    "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[]) WITH ORDINALITY "
    f"AS t({_KEY}, ord) "
    "JOIN usage_records u ON u.hour = t.hour AND u.scope = t.scope "
    "AND u.customer_account = t.customer_account AND u.dimension = t.dimension"
)
_ABORTED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
# The database out of reach (no connection within the pool's timeout, a connection lost, the
# server shutting down): not any job's fault, and each job alone would wait for it again.
_UNREACHABLE = (psycopg.OperationalError, PoolTimeout)

# What a job gets: None (every row new, each billed under its own id) or each row's outcome,
# in order; or the error that failed it.
BillResult = tuple[list[LedgerOutcome] | None, BaseException | None]
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def bill_group(connect: Connect, jobs: Sequence[Sequence[LedgerRow]]) -> list[BillResult]:
    """Bill ``jobs`` (each non-empty) as one group, on connections from ``connect`` (autocommit
    ones): one statement if it succeeds, else each job alone. Each job's result, in order."""
    try:
        return [(outcome, None) for outcome in _retried(connect, jobs)]
    except Exception as error:
        if isinstance(error, _UNREACHABLE) and not isinstance(error, _ABORTED):
            return [(None, error)] * len(jobs)  # each job alone would fail the same way
        if len(jobs) == 1:
            return [(None, error)]
        log.warning("a group of %d bill jobs failed (%s); billing each alone", len(jobs), error)
    results: list[BillResult] = []
    for job in jobs:
        try:
            [outcome] = _retried(connect, [job])
        except Exception as error:
            results.append((None, error))
        else:
            results.append((outcome, None))
    return results


def _retried(
    connect: Connect, jobs: Sequence[Sequence[LedgerRow]]
) -> list[list[LedgerOutcome] | None]:
    for attempt in range(RETRIES):
        try:
            with connect() as connection:
                return _bill(connection, jobs)
        except _ABORTED:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _bill(
    connection: psycopg.Connection[Any], jobs: Sequence[Sequence[LedgerRow]]
) -> list[list[LedgerOutcome] | None]:
    rows = [row for job in jobs for row in job]
    columns = [list(column) for column in zip(*rows, strict=True)]
    cursor = connection.execute(_INSERT, columns)
    if cursor.rowcount == len(rows):
        return [None] * len(jobs)
    written = {seq for (seq,) in cursor.fetchall()}
    held: list[tuple[int, str, int] | None] = [None] * len(rows)
    for ord_, seq, record_id, quantity in connection.execute(_HELD, columns[:4]):
        held[ord_ - 1] = (seq, record_id, quantity)
    outcomes: list[LedgerOutcome] = []
    claimed: set[int] = set()  # a key twice in the group: its row was written for the first
    for found in held:
        if found is None:  # the key's row was deleted since (a ledger restored meanwhile)
            raise RuntimeError("a billed key could not be read back; bill it again")
        seq, record_id, quantity = found
        mine = seq in written and seq not in claimed
        if mine:
            claimed.add(seq)
        outcomes.append(LedgerOutcome(record_id, quantity, inserted=mine))
    return each_request(outcomes, jobs)


@dataclass(slots=True)
class _Job:
    rows: Sequence[LedgerRow]
    waiter: asyncio.Future[list[LedgerOutcome] | None]


class PostgresBiller:
    """The flusher threads and their queue; see the module docstring."""

    def __init__(
        self,
        connect: Connect,
        flushers: int = 2,
        observer: Callable[[], WriteObserver | None] = lambda: None,
    ) -> None:
        self._connect = connect
        self._observer = observer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self.groups = 0  # groups billed so far (the tests' and the bench's view)
        self._threads = [
            threading.Thread(target=self._run, name=f"marketmeter-pg-bill-{n}", daemon=True)
            for n in range(flushers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, rows: Sequence[LedgerRow]) -> asyncio.Future[list[LedgerOutcome] | None]:
        """Queue ``rows`` (non-empty) for the running event loop; the future completes on it
        after the commit of the group holding them."""
        waiter: asyncio.Future[list[LedgerOutcome] | None] = (
            asyncio.get_running_loop().create_future()
        )
        if self._closed:
            waiter.set_exception(RuntimeError("the store is closed"))
        else:
            self._queue.put(_Job(rows, waiter))
        return waiter

    def close(self) -> None:
        """Bill every job already queued and stop the flushers."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        left: list[tuple[_Job, BillResult]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                job = self._queue.get_nowait()
                if job is not None:  # queued as the store closed
                    left.append((job, (None, RuntimeError("the store is closed"))))
        _settle(left)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stopping = next_group(self._queue, first, _rows_of, MAX_GROUP_ROWS)
            queued = len(group) + self._queue.qsize()
            started = time.perf_counter()
            try:
                self._bill(group)
            except BaseException:  # never leave a caller waiting, never lose the thread
                log.exception("billing a group failed")
                _settle([(job, (None, RuntimeError("billing failed"))) for job in group])
            observer = self._observer()
            if observer is not None:
                observer.committed(queued, time.perf_counter() - started)
            if stopping:
                return

    def _bill(self, group: list[_Job]) -> None:
        jobs = [job for job in group if not job.waiter.cancelled()]
        if not jobs:
            return
        results = bill_group(self._connect, [job.rows for job in jobs])
        self.groups += 1
        _settle(list(zip(jobs, results, strict=True)))


def _settle(done: list[tuple[_Job, BillResult]]) -> None:
    """Complete the jobs' futures, one wake-up of each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, BillResult]]] = {}
    for job, result in done:
        by_loop.setdefault(job.waiter.get_loop(), []).append((job, result))
    for loop, results in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_complete, results)


def _complete(done: list[tuple[_Job, BillResult]]) -> None:
    for job, (outcome, failure) in done:
        if job.waiter.done():
            continue
        if failure is None:
            job.waiter.set_result(outcome)
        else:
            job.waiter.set_exception(failure)


def _rows_of(job: _Job) -> int:
    return len(job.rows)
