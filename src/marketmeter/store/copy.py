"""Copying a whole ledger from one database to another (``marketmeter db copy``), e.g. an
embedded SQLite ledger into the PostgreSQL database several nodes will share.

Everything is copied: the catalog, registration tokens, signing keys, container registrations,
MeterUsage ClientToken claims, every billed record with its MeteringRecordId, so clients'
retries keep getting their first ids, and the lifecycle event log with its webhook deliveries
and their attempts, each event keeping its number (deliveries still pending are made by the
target's servers). The target must hold no billed record and no event (a copy never merges two
ledgers); it is migrated first. Rows go over in batches, each read as one keyset page of the
source (``COPY_KEYS``: a unique, ordered key, so memory stays constant whatever the ledger's
size) and written as one transaction of the target; ``progress`` hears of each batch, out of
``copy_size`` rows in all. The copy runs plain SQL on both stores' private primitives
(``store.sql_store.SqlStore``), the catalog through ``store.catalog_sql`` so that the target's
catalog version moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketmeter.store.base import OperatorStore
from marketmeter.store.catalog_sql import read_catalog, write_catalog
from marketmeter.store.events_sql import EVENT_LOG_TABLES
from marketmeter.store.row_copy import advance_sequence, insert_rows
from marketmeter.store.sql_connection import SqlConnection

if TYPE_CHECKING:
    from marketmeter.store.sql_store import SqlStore

__all__ = [
    "COPIED_ORDER",
    "COPIED_TABLES",
    "COPY_KEYS",
    "CopyRefused",
    "CopyReport",
    "copy_ledger",
    "copy_size",
]

_BATCH = 5000

# Table → columns copied as they are (the ledger and registration state; the catalog goes
# through write_catalog so its version is bumped on the target).
COPIED_TABLES: dict[str, tuple[str, ...]] = {
    "registration_tokens": (
        "token",
        "product_code",
        "buyer_account_id",
        "license_arn",
        "offer_type",
        "issued_at",
        "resolved_at",
    ),
    "signing_keys": ("version", "private_key_pem", "public_key_pem", "created_at", "retired_at"),
    "container_registrations": ("product_code", "buyer_account_id", "task", "registered_at"),
    "request_claims": (
        "customer_account",
        "client_token",
        "fingerprint",
        "metering_record_id",
        "created_at",
    ),
    "usage_records": (
        "hour",
        "scope",
        "customer_account",
        "dimension",
        "quantity_micros",
        "metering_record_id",
        "product_code",
        "license_arn",
        "customer_identifier",
        "usage_timestamp",
        "allocations",
        "received_at",
        "operation",
        "instance",
    ),
}

# The order rows are read and written in; "{insertion}" is the source's insertion order, so
# that tokens issued in the same second keep the order they were minted in (the snapshots of
# store.snapshots_sql read in it too).
COPIED_ORDER = {
    "registration_tokens": "issued_at, {insertion}",
    "signing_keys": "version",
    "container_registrations": "registered_at, task",
    "request_claims": "created_at, client_token",
    "usage_records": "seq",
}


# Each copied table's key for keyset paging: COPIED_ORDER (or the event log's order) made
# unique, so that a page starts right after the last row of the one before.
COPY_KEYS: dict[str, tuple[str, ...]] = {
    "registration_tokens": ("issued_at", "{insertion}"),
    "signing_keys": ("version",),
    "container_registrations": ("registered_at", "task", "product_code", "buyer_account_id"),
    "request_claims": ("created_at", "client_token", "customer_account"),
    "usage_records": ("seq",),
    "lifecycle_events": ("seq",),
    "event_deliveries": ("event_seq", "url"),
    "delivery_attempts": ("event_seq", "url", "attempt"),
    "sns_subscriptions": ("token",),
}


class CopyRefused(Exception):
    """The target cannot take the copy (it already holds billed records)."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    counts: dict[str, int]

    def describe(self) -> str:
        parts = [f"{count} {table}" for table, count in self.counts.items()]
        return "copied " + ", ".join(parts)


def copy_size(source_store: OperatorStore) -> int:
    """How many rows ``copy_ledger`` moves from ``source_store`` besides the catalog."""
    source = _sql_store(source_store)
    return sum(source._read_now(_Count(table)) for table in COPY_KEYS)


def copy_ledger(
    source_store: OperatorStore,
    target_store: OperatorStore,
    progress: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy everything from ``source_store`` into ``target_store`` (which must hold no billed
    record). Both are SQL stores: the copy runs on their private primitives. ``progress`` is
    called with the number of rows of each batch once it is committed."""
    source, target = _sql_store(source_store), _sql_store(target_store)
    for table, what in (("usage_records", "billed record"), ("lifecycle_events", "event")):
        held = target._read_now(_Count(table))
        if held:
            raise CopyRefused(
                f"the target already holds {held} {what}(s); copy into an empty ledger"
            )
    catalog = source._read_now(read_catalog)
    target._write_now(lambda sql: write_catalog(sql, catalog))
    counts = {
        "sellers": len(catalog.sellers),
        "products": len(catalog.products),
        "buyers": len(catalog.buyers),
        "agreements": len(catalog.agreements),
    }
    for table, columns in COPIED_TABLES.items():
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        )
        counts[table] = 0
        for rows in _pages(source, table, columns):
            target._write_now(_Insert(insert, rows))
            counts[table] += len(rows)
            if progress is not None:
                progress(len(rows))
    for table, (columns, _order) in EVENT_LOG_TABLES.items():
        counts[table] = 0
        for rows in _pages(source, table, columns):
            target._write_now(_InsertKeeping(table, columns, rows))
            counts[table] += len(rows)
            if progress is not None:
                progress(len(rows))
    target._write_now(lambda sql: advance_sequence(sql, "lifecycle_events"))
    return CopyReport(counts)


def _pages(source: SqlStore, table: str, columns: tuple[str, ...]) -> Iterator[list[Sequence[Any]]]:
    """``table``'s rows (values of ``columns``) in batches of ``_BATCH``, by ``COPY_KEYS``."""
    after: Sequence[Any] | None = None
    while True:
        page = source._read_now(_Page(table, columns, COPY_KEYS[table], after))
        if not page:
            return
        width = len(columns)
        after = page[-1][width:]
        yield [row[:width] for row in page]
        if len(page) < _BATCH:
            return


def _sql_store(store: OperatorStore) -> SqlStore:
    # here, not at the top: sql_store needs snapshots_sql, which needs this module's tables
    from marketmeter.store.sql_store import SqlStore

    if not isinstance(store, SqlStore):
        raise TypeError(f"a ledger copy needs SQL stores, not {type(store).__name__}")
    return store


@dataclass(frozen=True, slots=True)
class _Count:
    table: str

    def __call__(self, sql: SqlConnection) -> int:
        return int(sql.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])


@dataclass(frozen=True, slots=True)
class _Page:
    """Up to ``_BATCH`` rows of ``table`` after the key ``after``: each row's ``columns``, then
    its key's values."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    after: Sequence[Any] | None

    def __call__(self, sql: SqlConnection) -> list[Sequence[Any]]:
        key = [k.format(insertion=sql.insertion_order) for k in self.key]
        names = ", ".join([*self.columns, *key])
        where = ""
        if self.after is not None:
            where = f"WHERE ({', '.join(key)}) > ({', '.join('?' * len(key))}) "
        statement = (
            f"SELECT {names} FROM {self.table} {where}ORDER BY {', '.join(key)} LIMIT {_BATCH}"
        )
        return list(sql.execute(statement, tuple(self.after or ())).fetchall())


@dataclass(frozen=True, slots=True)
class _Insert:
    statement: str
    rows: Sequence[Sequence[Any]]

    def __call__(self, sql: SqlConnection) -> None:
        sql.executemany(self.statement, self.rows)


@dataclass(frozen=True, slots=True)
class _InsertKeeping:
    """Rows inserted with their keys (``seq`` included)."""

    table: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]

    def __call__(self, sql: SqlConnection) -> None:
        insert_rows(sql, self.table, self.columns, self.rows)
