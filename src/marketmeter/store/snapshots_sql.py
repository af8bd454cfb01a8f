"""Resetting the ledger and named snapshots of the whole state, for every backend (the seller's
test bench).

Written once against ``store.sql_connection.SqlConnection``; each backend runs every function
here as one write transaction of its own (SQLite: a job of the writer thread; PostgreSQL:
``_write``).

- ``reset`` empties the ledger (billed records, ClientToken claims, container registrations)
  and the lifecycle event log, and, dropping the catalog, the registration tokens and the
  catalog too. Signing keys and snapshots are kept.
- ``save_snapshot`` stores the rows of every state table (``STATE_TABLES``: the catalog, then
  the tables ``store.copy`` copies) as zlib-compressed JSON in ``snapshots``, read in one
  consistent view.
- ``restore_snapshot`` deletes every state table and inserts the snapshot's rows in their
  original order (billed records keep their ``seq``), then moves the catalog version past both
  the current one and the snapshot's, so every node's cached catalog reloads.

On PostgreSQL, reset and restore first lock the tables they replace against other writers
(readers go on), so no other node's write lands between the deletes and the inserts.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import orjson

from marketmeter.store.base import SnapshotError, SnapshotInfo
from marketmeter.store.catalog_sql import AGREEMENT_COLUMNS, catalog_version
from marketmeter.store.copy import COPIED_ORDER, COPIED_TABLES
from marketmeter.store.events_sql import EVENT_LOG_TABLES
from marketmeter.store.row_copy import advance_sequence, insert_rows
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "STATE_TABLES",
    "delete_snapshot",
    "reset",
    "restore_snapshot",
    "save_snapshot",
    "schema_version",
    "snapshots",
]

# Every table of the state, parents before children (the order rows are inserted in; deletes
# go in reverse), with the columns a snapshot holds and the order its rows are read in.
_CATALOG_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "sellers": (("account_id", "name"), "account_id"),
    "access_keys": (
        ("access_key_id", "secret_access_key", "owner_kind", "account_id"),
        "access_key_id",
    ),
    "products": (
        (
            "product_code",
            "seller_account_id",
            "kind",
            "integration",
            "name",
            "registration_url",
            "per_request_metering",
            "notification_targets",
            "pricing_model",
        ),
        "product_code",
    ),
    "dimensions": (("product_code", "name", "position"), "product_code, position"),
    "notification_urls": (("product_code", "position", "url"), "product_code, position"),
    "buyers": (("account_id", "customer_identifier", "name"), "account_id"),
    "agreements": (AGREEMENT_COLUMNS, "license_arn"),
    "entitlements": (
        ("license_arn", "dimension", "position", "value_type", "value", "expires_at"),
        "license_arn, position",
    ),
    "offers": (("offer_id", "product_code", "name", "buyers", "terms"), "offer_id"),
}
# usage_records keeps its seq, so that the order records were billed in (the usage view's
# tiebreak) survives a restore.
_SEQUENCED = {"usage_records"}
STATE_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    **_CATALOG_TABLES,
    **{
        table: ((("seq",) if table in _SEQUENCED else ()) + columns, COPIED_ORDER[table])
        for table, columns in COPIED_TABLES.items()
    },
    **EVENT_LOG_TABLES,
}
# What a reset empties: the ledger always, everything else (but these) dropping the catalog.
_LEDGER_TABLES = ("container_registrations", "request_claims", "usage_records")
_ALWAYS_KEPT = ("signing_keys",)
# The event log: emptied by every reset (and listed in its answer only when it held rows).
_EVENT_TABLES = tuple(reversed(EVENT_LOG_TABLES))
# PostgreSQL: the order reset and restore lock tables in, the one every writer's own order
# agrees with, so that none of them deadlocks with a restore: catalog_state first (catalog
# writers start there), registration_tokens before the parents its foreign keys check
# (issuing tokens locks it, then them), request_claims before usage_records (bill_claim's).
_LOCK_ORDER = (
    "catalog_state",
    "registration_tokens",
    "request_claims",
    "usage_records",
    "container_registrations",
    "signing_keys",
    "entitlements",
    "agreements",
    "offers",
    "notification_urls",
    "dimensions",
    "access_keys",
    "buyers",
    "products",
    "sellers",
    "lifecycle_events",
    "event_deliveries",
    "delivery_attempts",
    "sns_subscriptions",
)


def schema_version(sql: SqlConnection) -> int:
    """The schema version of the database (its newest applied migration)."""
    return int(sql.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])


def reset(sql: SqlConnection, drop_catalog: bool) -> dict[str, int]:
    """Empty the ledger (and with ``drop_catalog`` the tokens and the catalog, bumping its
    version), inside the caller's transaction; returns the rows deleted per table."""
    tables = [
        table
        for table in reversed(STATE_TABLES)
        if table not in _EVENT_TABLES
        and (table in _LEDGER_TABLES or (drop_catalog and table not in _ALWAYS_KEPT))
    ]
    locked = [*tables, *_EVENT_TABLES]
    _lock_against_writers(sql, ["catalog_state", *locked] if drop_catalog else locked)
    deleted = {table: _delete_all(sql, table) for table in tables}
    # the event log is listed only when it held something
    logged = {table: _delete_all(sql, table) for table in _EVENT_TABLES}
    deleted.update((table, count) for table, count in logged.items() if count)
    if drop_catalog:
        sql.execute("UPDATE catalog_state SET version = version + 1 WHERE id = 1")
    return deleted


def save_snapshot(sql: SqlConnection, name: str, created_at: float) -> SnapshotInfo:
    """Store every state table's rows under ``name`` (replacing a snapshot of that name),
    inside the caller's transaction, which must not have read anything yet (PostgreSQL reads
    every table in one repeatable-read view)."""
    if sql.dialect == "postgresql":
        sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    tables: dict[str, dict[str, object]] = {}
    counts: dict[str, int] = {}
    for table, (columns, order) in STATE_TABLES.items():
        rows = sql.execute(
            f"SELECT {', '.join(columns)} FROM {table} "
            f"ORDER BY {order.format(insertion=sql.insertion_order)}"
        ).fetchall()
        tables[table] = {"columns": columns, "rows": rows}
        counts[table] = len(rows)
    payload = {"catalog_version": catalog_version(sql), "tables": tables}
    data = zlib.compress(orjson.dumps(payload))
    sql.execute(
        "INSERT INTO snapshots (name, created_at, schema_version, counts, data) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET created_at = "
        "excluded.created_at, schema_version = excluded.schema_version, "
        "counts = excluded.counts, data = excluded.data",
        (name, created_at, schema_version(sql), orjson.dumps(counts).decode(), data),
    )
    return SnapshotInfo(name, created_at, counts, len(data))


def snapshots(sql: SqlConnection) -> list[SnapshotInfo]:
    """Every snapshot, by name (their data is not read)."""
    rows = sql.execute("SELECT name, created_at, counts, length(data) FROM snapshots").fetchall()
    found = [
        SnapshotInfo(name, created_at, orjson.loads(counts), size)
        for name, created_at, counts, size in rows
    ]
    # sorted here, not by SQL: PostgreSQL's collation may order names unlike SQLite
    return sorted(found, key=lambda info: info.name)


def restore_snapshot(sql: SqlConnection, name: str) -> SnapshotInfo | None:
    """Replace the whole state with snapshot ``name``'s, inside the caller's transaction;
    ``None`` if there is no such snapshot, ``SnapshotError`` if it was taken under another
    schema version."""
    found = sql.execute(
        "SELECT created_at, schema_version, counts, data FROM snapshots WHERE name = ?", (name,)
    ).fetchone()
    if found is None:
        return None
    created_at, taken_under, counts, data = found
    current = schema_version(sql)
    if taken_under != current:
        raise SnapshotError(
            f"snapshot {name!r} was taken under schema version {taken_under}; this database "
            f"is at schema version {current}"
        )
    payload = orjson.loads(zlib.decompress(data))
    _lock_against_writers(sql, ["catalog_state", *STATE_TABLES])
    version_before = catalog_version(sql)
    for table in reversed(STATE_TABLES):
        _delete_all(sql, table)
    for table in STATE_TABLES:
        saved = payload["tables"][table]
        insert_rows(sql, table, saved["columns"], saved["rows"])
    version = max(version_before, int(payload["catalog_version"])) + 1
    sql.execute("UPDATE catalog_state SET version = ? WHERE id = 1", (version,))
    for table in (*_SEQUENCED, "lifecycle_events"):
        advance_sequence(sql, table)
    return SnapshotInfo(name, created_at, orjson.loads(counts), len(data))


def delete_snapshot(sql: SqlConnection, name: str) -> bool:
    """Delete snapshot ``name``; False if there was none."""
    deleted = sql.execute("DELETE FROM snapshots WHERE name = ? RETURNING name", (name,))
    return deleted.fetchone() is not None


def _lock_against_writers(sql: SqlConnection, tables: Sequence[str]) -> None:
    """PostgreSQL: hold off every other writer of ``tables`` until the commit (readers go on).
    SQLite's single writer already does."""
    if sql.dialect == "postgresql" and tables:
        ordered = sorted(tables, key=_LOCK_ORDER.index)
        sql.execute(f"LOCK TABLE {', '.join(ordered)} IN EXCLUSIVE MODE")


def _delete_all(sql: SqlConnection, table: str) -> int:
    count = int(sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    sql.execute(f"DELETE FROM {table}")
    return count
