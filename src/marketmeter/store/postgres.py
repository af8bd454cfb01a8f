"""The shared store: PostgreSQL through psycopg 3 and a connection pool, for several nodes.

Same contract and behaviour as ``store.sqlite`` (``store.base.OperatorStore``):

- Every decision that must hold across nodes is a unique constraint hit by ``INSERT ... ON
  CONFLICT DO NOTHING``: the ledger's dedupe key, MeterUsage's ClientToken claims, signing key
  versions, container registrations. No read-then-write, no application lock.
- Billing is grouped (``store.postgres_biller``): the rows of every request in flight on this
  node are billed together in **one statement, one round trip and one commit**; a second read
  follows only when some key was already billed.
- Acknowledged only after ``COMMIT`` with ``synchronous_commit = on``.
- Migrations: the PostgreSQL files of the one versioned history (``store/migrations``), applied
  under an advisory lock so that nodes starting together apply them once; a newer schema is
  refused.
- The catalog snapshot is cached per node and reloaded when ``catalog_state.version`` moved.
  The version is read for every request, but the requests of a node waiting at once share one
  read that began after each of them asked (``store.shared_read``).

The pool is psycopg's synchronous ``ConnectionPool``; async callers reach it through this
store's own threads (one per pooled connection), so it serves any event loop and the blocking
CLI alike. The typed methods both backends share are ``store.sql_store.SqlStore``'s, over this
store's primitives (``_read``/``_write`` and their blocking forms); billing, the catalog cache,
the usage view and migrations are this module's own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from marketmeter.catalog.model import Catalog, CatalogSnapshot
from marketmeter.metering.types import LedgerEntry, LedgerOutcome
from marketmeter.store.base import BilledRecord, SchemaError, UsageQuery
from marketmeter.store.catalog_sql import catalog_version, read_catalog
from marketmeter.store.ledger_rows import LedgerRow, ledger_row
from marketmeter.store.migrations import (
    SCHEMA_MIGRATIONS_TABLE,
    current_version,
    pending,
    statements,
)
from marketmeter.store.postgres_biller import RETRIES, PostgresBiller
from marketmeter.store.shared_read import SharedRead
from marketmeter.store.sql_connection import SqlConnection
from marketmeter.store.sql_store import SqlStore
from marketmeter.store.usage_sql import billed_record, usage_query_sql

__all__ = ["PostgresStore", "migrate"]

T = TypeVar("T")

# pg_advisory_xact_lock key for migrations: "mmeter" in ASCII.
_MIGRATION_LOCK = 0x6D6D65746572


class _Sql:
    """A psycopg connection as the shared SQL modules see it: ``?`` placeholders."""

    dialect = "postgresql"
    insertion_order = "seq"

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._connection.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), list(rows))

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN`` with ``rows``: bulk writes
        (``store.bulk_sql``)."""
        with (
            self._connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)


def migrate(connection: psycopg.Connection[Any]) -> int:
    """Apply the missing migrations in one transaction, under an advisory lock."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute(SCHEMA_MIGRATIONS_TABLE)
        current = current_version(_Sql(connection))
        missing = pending("postgresql", current)
        if missing:
            # every statement in one round trip (no parameters: PostgreSQL's simple query
            # protocol takes several), then every version row in another
            script = [s for migration in missing for s in statements(migration.sql)]
            connection.execute(";\n".join(script))
            connection.cursor().executemany(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                [(m.version, m.name, time.time()) for m in missing],
            )
            current = missing[-1].version
    return current


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.execute("SET synchronous_commit TO on")


class PostgresStore(SqlStore):
    """``store.base.OperatorStore`` on a PostgreSQL database shared by any number of nodes.
    ``catalog``: the catalog as read already, kept while the database's catalog version is its
    own."""

    prefetch_catalog_chunks = True  # its writes wait without the GIL (store.prefetch)

    def __init__(
        self,
        url: str,
        pool_size: int = 16,
        bill_flushers: int = 2,
        catalog: CatalogSnapshot | None = None,
    ) -> None:
        self.url = url
        # Blocking database calls run here, one thread per pooled connection, so the event
        # loop never waits on PostgreSQL and the default executor's few threads are no limit.
        self._threads = ThreadPoolExecutor(pool_size, thread_name_prefix="marketmeter-pg")
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
                migrate(connection)
        except psycopg.Error as error:
            raise SchemaError(f"cannot connect to PostgreSQL: {error}") from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=15)
        except (psycopg.Error, PoolTimeout) as error:
            self._pool.close()
            raise SchemaError(f"cannot connect to PostgreSQL: {error}") from None
        # billing's group commit: its flushers take their connections from the pool
        self._biller = PostgresBiller(
            self._pool.connection, bill_flushers, lambda: self._write_observer
        )
        self._snapshot_lock = threading.Lock()
        self._in_flight = 0  # writes waiting for a connection or running (the metrics)
        self._in_flight_lock = threading.Lock()
        # loaded on first use: a command that never reads the catalog (catalog apply) never
        # holds it
        self._snapshot = catalog or CatalogSnapshot(-1, Catalog())
        self._catalog_version = SharedRead(lambda: self._read(catalog_version))

    def describe(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname')}"
        return f"PostgreSQL {where} (synchronous_commit=on)"

    # --- plumbing --------------------------------------------------------------------------

    def _in_thread(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    async def _read(self, work: Callable[[SqlConnection], T]) -> T:
        return await self._in_thread(self._read_now, work)

    async def _write(self, work: Callable[[SqlConnection], T]) -> T:
        return await self._in_thread(self._write_now, work)

    def _read_now(self, work: Callable[[SqlConnection], T]) -> T:
        with self._pool.connection() as connection:
            return work(_Sql(connection))

    def _write_now(self, work: Callable[[SqlConnection], T]) -> T:
        """Run ``work`` in one transaction; retried (a few times) when PostgreSQL aborted it
        for a deadlock or a serialization failure, which nothing acknowledged depends on."""
        with self._in_flight_lock:
            self._in_flight += 1
            queued = self._in_flight
        started = time.perf_counter()
        try:
            for attempt in range(RETRIES):
                try:
                    with self._pool.connection() as connection, connection.transaction():
                        return work(_Sql(connection))
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    if attempt == RETRIES - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
            observer = self._write_observer
            if observer is not None:
                observer.committed(queued, time.perf_counter() - started)

    # --- catalog ---------------------------------------------------------------------------

    async def catalog_snapshot(self) -> CatalogSnapshot:
        version = await self._catalog_version()
        if version == self._snapshot.version:
            return self._snapshot
        return await self._in_thread(self._snapshot_at, version)

    def catalog_snapshot_now(self) -> CatalogSnapshot:
        return self._snapshot_at(self._read_now(catalog_version))

    def _snapshot_at(self, version: int) -> CatalogSnapshot:
        """The snapshot, reloaded if ``version`` (just read) is not the cached one's."""
        if version != self._snapshot.version:
            with self._snapshot_lock:
                if version != self._snapshot.version:
                    self._snapshot = self._load_snapshot()
        return self._snapshot

    def _load_snapshot(self) -> CatalogSnapshot:
        def load(sql: SqlConnection) -> CatalogSnapshot:
            sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return CatalogSnapshot(catalog_version(sql), read_catalog(sql))

        return self._write_now(load)

    # --- ledger ----------------------------------------------------------------------------

    async def bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerOutcome]:
        if not entries:
            return []
        rows = [ledger_row(entry) for entry in entries]
        outcomes = await self._biller.submit(rows)
        if outcomes is None:
            return [LedgerOutcome(row[5], row[4], inserted=True) for row in rows]
        return outcomes

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
        if not rows:
            return None
        return await self._biller.submit(rows)

    async def usage(self, query: UsageQuery) -> list[BilledRecord]:
        return await self._in_thread(self.usage_now, query)

    def usage_now(self, query: UsageQuery) -> list[BilledRecord]:
        sql_text, params = usage_query_sql(query)
        rows = self._read_now(lambda sql: sql.execute(sql_text, params).fetchall())
        return [billed_record(row) for row in rows]

    # --- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)  # not on its own executor: it shuts that down

    def close_now(self) -> None:
        self._biller.close()
        self._pool.close()
        self._threads.shutdown(wait=True)
