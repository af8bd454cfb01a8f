"""Copying a whole ledger from one database to another (``marketmeter db copy``), e.g. an
embedded SQLite ledger into the PostgreSQL database several nodes will share.

Everything is copied: the catalog, registration tokens, signing keys, container registrations,
MeterUsage ClientToken claims, every billed record with its MeteringRecordId, so clients'
retries keep getting their first ids, and the lifecycle event log with its webhook deliveries
and their attempts, each event keeping its number (deliveries still pending are made by the
target's servers). The target must hold no billed record and no event (a copy never merges two
ledgers); it is migrated first. Rows go over in batches, each batch one transaction
of the target. The copy runs plain SQL on both stores' private primitives
(``store.sql_store.SqlStore``), the catalog through ``store.catalog_sql`` so that the target's
catalog version moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketmeter.store.base import OperatorStore
from marketmeter.store.catalog_sql import read_catalog, write_catalog
from marketmeter.store.events_sql import EVENT_LOG_TABLES
from marketmeter.store.row_copy import advance_sequence, insert_rows
from marketmeter.store.sql_connection import SqlConnection

if TYPE_CHECKING:
    from marketmeter.store.sql_store import SqlStore

__all__ = ["COPIED_ORDER", "COPIED_TABLES", "CopyRefused", "CopyReport", "copy_ledger"]

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


class CopyRefused(Exception):
    """The target cannot take the copy (it already holds billed records)."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    counts: dict[str, int]

    def describe(self) -> str:
        parts = [f"{count} {table}" for table, count in self.counts.items()]
        return "copied " + ", ".join(parts)


def copy_ledger(source_store: OperatorStore, target_store: OperatorStore) -> CopyReport:
    """Copy everything from ``source_store`` into ``target_store`` (which must hold no billed
    record). Both are SQL stores: the copy runs on their private primitives."""
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
        rows = source._read_now(_Select(table, columns))
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        )
        for start in range(0, len(rows), _BATCH):
            target._write_now(_Insert(insert, rows[start : start + _BATCH]))
        counts[table] = len(rows)
    for table, (columns, order) in EVENT_LOG_TABLES.items():
        rows = source._read_now(_Select(table, columns, order))
        for start in range(0, len(rows), _BATCH):
            target._write_now(_InsertKeeping(table, columns, rows[start : start + _BATCH]))
        counts[table] = len(rows)
    target._write_now(lambda sql: advance_sequence(sql, "lifecycle_events"))
    return CopyReport(counts)


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
class _Select:
    table: str
    columns: tuple[str, ...]
    order: str | None = None  # default: COPIED_ORDER's

    def __call__(self, sql: SqlConnection) -> list[Sequence[Any]]:
        names = ", ".join(self.columns)
        order = (self.order or COPIED_ORDER[self.table]).format(insertion=sql.insertion_order)
        return sql.execute(f"SELECT {names} FROM {self.table} ORDER BY {order}").fetchall()


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
