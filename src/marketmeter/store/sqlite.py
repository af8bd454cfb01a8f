"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL`` by default.

- Writes go through ``SQLiteWriter`` (one thread, group commit, acknowledged after commit).
- Billing a batch is one job: per entry one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
  on the dedupe key (the insert *is* the duplicate check), and for a key already billed a read
  of the first row by that same unique index. No scan, no read-then-write race.
- MeterUsage of per-request products claims its ClientToken in ``request_claims`` with the same
  insert-first pattern, in the transaction that bills the record.
- The catalog snapshot is cached and reloaded only when ``catalog_state.version`` moved (any
  process may change it, e.g. ``marketmeter catalog apply`` next to a running server). The
  version is read from the catalog stamp (``store.catalog_stamp``: shared memory, no query per
  request), which the writer thread updates after any commit that moved it.
- The write-ahead log is checkpointed off the writer's thread (``store.sqlite_checkpoints``).
- Point reads (a token, a key, a registration, a ledger key) run on one reader connection; WAL
  lets them proceed while the writer commits.
- A new database file is created readable and writable by its owner only (0600): it holds
  secret access keys and RegisterUsage private keys. SQLite gives its ``-wal`` and ``-shm``
  files the database file's mode. An existing file keeps the mode it has.

The typed methods shared with PostgreSQL are ``store.sql_store.SqlStore``'s, over this store's
primitives (writer jobs, the reader connection); billing a batch, the catalog cache and the
usage view are this module's own.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from marketmeter.catalog.model import Catalog, CatalogSnapshot
from marketmeter.metering.types import LedgerEntry, LedgerOutcome
from marketmeter.store.base import BilledRecord, SchemaError, UsageQuery, WriteObserver
from marketmeter.store.catalog_sql import catalog_version, read_catalog
from marketmeter.store.catalog_stamp import CatalogStamp, stamp_path
from marketmeter.store.ledger_rows import LEDGER_COLUMNS, LedgerRow, each_request, ledger_row
from marketmeter.store.migrations import (
    SCHEMA_MIGRATIONS_TABLE,
    current_version,
    pending,
    statements,
)
from marketmeter.store.sql_connection import SqlConnection
from marketmeter.store.sql_store import SqlStore
from marketmeter.store.sqlite_checkpoints import Checkpoints
from marketmeter.store.sqlite_writer import SQLiteWriter
from marketmeter.store.usage_sql import billed_record, usage_query_sql

__all__ = [
    "PRIVATE_FILE_MODE",
    "SQLiteStore",
    "Synchronous",
    "create_private",
    "migrate",
    "read_catalog_unopened",
]


Synchronous = Literal["full", "normal"]
T = TypeVar("T")

_EXISTING_SEQ = (
    "SELECT seq, metering_record_id, quantity_micros FROM usage_records "
    "WHERE hour = ? AND scope = ? AND customer_account = ? AND dimension = ?"
)


class _Sql:
    """A sqlite3 connection as the shared SQL modules see it (``SqlConnection``)."""

    dialect = "sqlite"
    insertion_order = "rowid"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self._connection.executemany(sql, rows)


PRIVATE_FILE_MODE = 0o600


def create_private(path: str) -> None:
    """Create the database file at ``path`` with mode 0600 (whatever the umask) if it does not
    exist yet; SQLite then opens it as it is. Paths SQLite treats specially are left alone,
    and a path that cannot be created is left for SQLite to report."""
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except OSError:
        return  # it exists (its mode is the owner's choice), or SQLite says why it cannot
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)


def _connect(path: str, synchronous: Synchronous) -> sqlite3.Connection:
    create_private(path)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 10000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    return connection


def _writer_connection(path: str, synchronous: Synchronous) -> sqlite3.Connection:
    """The writer thread's connection: ``_connect``'s, never checkpointing as it commits
    (``store.sqlite_checkpoints`` does)."""
    connection = _connect(path, synchronous)
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    return connection


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the missing migrations; refuse a database newer than this code. Returns version."""
    connection.execute(SCHEMA_MIGRATIONS_TABLE)
    current = current_version(_Sql(connection))
    for migration in pending("sqlite", current):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(migration.sql):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        current = migration.version
    return current


def read_catalog_unopened(path: str) -> CatalogSnapshot | None:
    """The catalog of the ledger at ``path``, read on a connection of its own that starts no
    thread (``serve`` reads it before it forks its workers, which then share it); None if there
    is no such file yet, its schema is not this code's newest, or it cannot be read (opening
    the store then says why)."""
    if path in ("", ":memory:") or path.startswith("file:") or not os.path.isfile(path):
        return None
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA query_only = 1")
        connection.execute("BEGIN")
        sql = _Sql(connection)
        if pending("sqlite", current_version(sql)):
            return None
        return CatalogSnapshot(catalog_version(sql), read_catalog(sql))
    except (sqlite3.Error, SchemaError):
        return None
    finally:
        connection.close()


class SQLiteStore(SqlStore):
    """``store.base.OperatorStore`` on one SQLite file. ``catalog``: the catalog as read
    already (``read_catalog_unopened``), kept while the ledger's catalog version is its own."""

    def __init__(
        self,
        path: str | Path,
        synchronous: Synchronous = "full",
        catalog: CatalogSnapshot | None = None,
    ) -> None:
        self.path = str(path)
        self.synchronous = synchronous
        with _connect(self.path, synchronous) as bootstrap:
            migrate(bootstrap)
        bootstrap.close()
        stamp = stamp_path(self.path)
        self._stamp = None
        if stamp is not None:
            self._stamp = CatalogStamp(stamp, stat.S_IMODE(os.stat(self.path).st_mode))
        self._checkpoints = Checkpoints(lambda: _connect(self.path, synchronous))
        self._writer = SQLiteWriter(
            lambda: _writer_connection(self.path, synchronous),
            on_commit=self._publish_catalog_version if self._stamp is not None else None,
            between_groups=self._checkpoints.after_group,
        )
        self._watch = _connect(self.path, synchronous)
        self._watch_lock = threading.Lock()
        # long reads (lists, export pages, summaries) off the event loop, on their own
        # connection, so they never hold up the point reads of ``_watch``
        self._scanner = _connect(self.path, synchronous)
        self._scan_lock = threading.Lock()
        if self._stamp is not None:
            self._publish_catalog_version(self._watch)
        # loaded on first use: a command that never reads the catalog (catalog apply) never
        # holds it
        self._snapshot = catalog or CatalogSnapshot(-1, Catalog())

    def describe(self) -> str:
        return f"SQLite {self.path} (WAL, synchronous={self.synchronous.upper()})"

    def observe_writes(self, observer: WriteObserver) -> None:
        self._writer.committed = observer.committed

    # --- catalog ---------------------------------------------------------------------------

    async def catalog_snapshot(self) -> CatalogSnapshot:
        return self.catalog_snapshot_now()

    def catalog_snapshot_now(self) -> CatalogSnapshot:
        """The snapshot, refreshed if the catalog changed: the stamp's version, read from
        memory (without a stamp, one indexed read)."""
        if self._stamp is not None:
            version = self._stamp.read()
        else:
            with self._watch_lock:
                version = catalog_version(_Sql(self._watch))
        if version != self._snapshot.version:
            self._snapshot = self._load_snapshot()
        return self._snapshot

    def _load_snapshot(self) -> CatalogSnapshot:
        with self._watch_lock:
            self._watch.execute("BEGIN")
            try:
                version = catalog_version(_Sql(self._watch))
                catalog = read_catalog(_Sql(self._watch))
            finally:
                self._watch.execute("COMMIT")
            # the pages of the whole catalog just read stay in the connection's cache (up to
            # 2 MiB in every process of a server) for point reads that need few of them
            self._watch.execute("PRAGMA shrink_memory")
        return CatalogSnapshot(version, catalog)

    def _publish_catalog_version(self, connection: sqlite3.Connection) -> None:
        """After a commit (writer thread) or at start: the stamp follows the committed
        version."""
        assert self._stamp is not None
        self._stamp.publish(lambda: catalog_version(_Sql(connection)))

    # --- primitives (store.sql_store) -----------------------------------------------------

    async def _read(self, work: Callable[[SqlConnection], T]) -> T:
        return self._read_now(work)  # a point read: on the event loop, as cheap as a lookup

    def _read_now(self, work: Callable[[SqlConnection], T]) -> T:
        """Run ``work`` on the reader connection (indexed: microseconds, never blocked by the
        writer in WAL mode)."""
        with self._watch_lock:
            return work(_Sql(self._watch))

    async def _scan(self, work: Callable[[SqlConnection], T]) -> T:
        return await asyncio.to_thread(self._scan_now, work)

    def _scan_now(self, work: Callable[[SqlConnection], T]) -> T:
        with self._scan_lock:
            return work(_Sql(self._scanner))

    async def _write(self, work: Callable[[SqlConnection], T]) -> T:
        return await self._writer.submit_async(lambda c: work(_Sql(c)))

    def _write_now(self, work: Callable[[SqlConnection], T]) -> T:
        return self._writer.submit(lambda c: work(_Sql(c))).result()

    # --- ledger ----------------------------------------------------------------------------

    async def bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerOutcome]:
        rows = [ledger_row(entry) for entry in entries]
        outcomes = await self.bill_rows(rows)
        if outcomes is None:
            return [LedgerOutcome(row[5], row[4], inserted=True) for row in rows]
        return outcomes

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
        # up to one INSERT statement: rolled back whole by SQLite if it fails, no savepoint
        atomic = len(rows) <= _ROWS_PER_INSERT
        return await self._writer.submit_async(
            lambda c: _bill(c, rows), atomic=atomic, merge=_bill_each, payload=rows
        )

    async def usage(self, query: UsageQuery) -> list[BilledRecord]:
        return await asyncio.to_thread(self.usage_now, query)

    def usage_now(self, query: UsageQuery) -> list[BilledRecord]:
        """Blocking form of ``usage``, for the CLI."""
        sql, params = usage_query_sql(query)
        connection = _connect(self.path, self.synchronous)
        try:
            rows = connection.execute(sql, params).fetchall()
        finally:
            connection.close()
        return [billed_record(row) for row in rows]

    # --- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)

    def close_now(self) -> None:
        self._writer.close()
        self._checkpoints.close()
        with self._watch_lock:
            self._watch.close()
        with self._scan_lock:
            self._scanner.close()
        if self._stamp is not None:
            self._stamp.close()
            self._stamp = None


def _bill(connection: sqlite3.Connection, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
    """One statement per chunk inserts every new key. When it wrote every row (the usual
    case) each entry is billed under its own id: None. Otherwise each key is read back: the rows a
    statement wrote are the last ``rowcount`` sequence numbers it took (one writer, ``seq``
    the rowid), so a key whose row has one of them was written for the first entry of that
    key in the batch.

    Without ``RETURNING`` the insert is a single ``sqlite3_step``: the writer thread gives up
    and takes back the GIL once per statement, not once per row."""
    written: list[range] = []
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        cursor = connection.execute(
            _insert_many(len(chunk)), [value for row in chunk for value in row]
        )
        if cursor.rowcount > 0 and cursor.lastrowid is not None:
            written.append(range(cursor.lastrowid - cursor.rowcount + 1, cursor.lastrowid + 1))
    if sum(len(seqs) for seqs in written) == len(rows):
        return None
    outcomes = []
    claimed: set[int] = set()  # a key twice in the batch: its row was written for the first
    for row in rows:
        seq, record_id, quantity = connection.execute(_EXISTING_SEQ, row[:4]).fetchone()
        mine = seq not in claimed and any(seq in seqs for seqs in written)
        if mine:
            claimed.add(seq)
        outcomes.append(LedgerOutcome(record_id, quantity, inserted=mine))
    return outcomes


def _bill_each(
    connection: sqlite3.Connection, batches: list[Sequence[LedgerRow]]
) -> list[list[LedgerOutcome] | None]:
    """Several requests' rows billed as one (``_bill`` of them all, in order), then each
    request's outcomes: what billing them one after the other gives, since the first entry
    of a key in that order is the one written (the writer's merge: ``store.sqlite_writer``)."""
    return each_request(_bill(connection, [row for each in batches for row in each]), batches)


# 14 parameters a row: 500 rows stay far below SQLite's limit of 32,766 parameters. (2,000-row
# statements were measured: no faster, and each prepared statement the connection keeps holds
# its parameters' memory: 70 MiB more at the peak.)
_ROWS_PER_INSERT = 500


@functools.cache
def _insert_many(count: int) -> str:
    """``INSERT`` of ``count`` ledger rows; a key already billed is left as it is."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
    return (
        f"INSERT INTO usage_records ({LEDGER_COLUMNS}) VALUES {values} "
        "ON CONFLICT (hour, scope, customer_account, dimension) DO NOTHING"
    )
