"""The crash test's view of a stopped server's ledger, read straight from the database (not
through marketmeter): the rows of ``usage_records`` and the database's own integrity check.

SQLite: the ledger file, ``PRAGMA integrity_check`` must say ``ok``. PostgreSQL: ``amcheck``'s
``bt_index_check`` (with ``heapallindexed``) on every index of ``usage_records``, and the row
count read through the dedupe index must equal the count read by a sequential scan.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

__all__ = [
    "LedgerRow",
    "integrity_problems",
    "ledger_rows",
    "postgres_integrity_problems",
    "sqlite_integrity_problems",
]

_ROWS = (
    "SELECT hour, scope, customer_account, dimension, metering_record_id, quantity_micros, "
    "operation, instance, received_at FROM usage_records"
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One billed record; (hour, scope, customer_account, dimension) is its dedupe key."""

    hour: int
    scope: str
    customer_account: str
    dimension: str
    metering_record_id: str
    quantity_micros: int
    operation: str
    instance: str | None
    received_at: float

    @property
    def dedupe_key(self) -> tuple[int, str, str, str]:
        return (self.hour, self.scope, self.customer_account, self.dimension)


def _is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def ledger_rows(db: str) -> list[LedgerRow]:
    """Every row of ``usage_records`` in the ledger ``db`` (a SQLite path or PostgreSQL URL)."""
    if _is_postgres(db):
        with psycopg.connect(db) as postgres:
            rows = postgres.execute(_ROWS).fetchall()
    else:
        sqlite = sqlite3.connect(Path(db))
        try:
            rows = sqlite.execute(_ROWS).fetchall()
        finally:
            sqlite.close()
    return [
        LedgerRow(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], float(r[8]))
        for r in rows
    ]


def sqlite_integrity_problems(path: str) -> list[str]:
    """What ``PRAGMA integrity_check`` reports, or nothing when it says ``ok``."""
    connection = sqlite3.connect(Path(path))
    try:
        lines = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
    finally:
        connection.close()
    return [] if lines == ["ok"] else [f"sqlite integrity_check: {line}" for line in lines]


def postgres_integrity_problems(url: str) -> list[str]:
    """amcheck on the indexes of ``usage_records`` and an index-vs-heap row count."""
    problems: list[str] = []
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        indexes = connection.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'usage_records'::regclass"
        ).fetchall()
        for (index,) in indexes:
            try:
                connection.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            except psycopg.Error as error:
                problems.append(f"amcheck {index}: {error}")
        connection.execute("SET enable_indexscan = off")
        connection.execute("SET enable_indexonlyscan = off")
        connection.execute("SET enable_bitmapscan = off")
        heap = _count(connection, "SELECT count(*) FROM usage_records")
        connection.execute("RESET ALL")
        connection.execute("SET enable_seqscan = off")
        connection.execute("VACUUM (ANALYZE) usage_records")  # lets an index-only scan count
        through_index = _count(
            connection,
            "SELECT count(*) FROM usage_records WHERE hour IS NOT NULL AND scope IS NOT NULL",
        )
        if heap != through_index:
            problems.append(f"postgresql counts differ: seq scan {heap}, index {through_index}")
    return problems


def _count(connection: psycopg.Connection[Any], query: str) -> int:
    row = connection.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def integrity_problems(db: str) -> list[str]:
    """The integrity check of the ledger's own database (SQLite path or PostgreSQL URL)."""
    return postgres_integrity_problems(db) if _is_postgres(db) else sqlite_integrity_problems(db)
