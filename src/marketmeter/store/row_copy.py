"""Rows moved between databases with their keys, for snapshots and ``marketmeter db copy``.

A ``seq`` column keeps its values (the event log's deliveries refer to them, and the ledger's
order rests on them). On PostgreSQL ``seq`` is an identity column: explicit values need
``OVERRIDING SYSTEM VALUE``, and its sequence must then be moved past them.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketmeter.store.sql_connection import SqlConnection

__all__ = ["advance_sequence", "insert_rows"]


def insert_rows(
    sql: SqlConnection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert ``rows`` (values of ``columns``) into ``table`` as they are, ``seq`` included."""
    if not rows:
        return
    override = (
        " OVERRIDING SYSTEM VALUE" if sql.dialect == "postgresql" and "seq" in columns else ""
    )
    sql.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}){override} "
        f"VALUES ({', '.join('?' * len(columns))})",
        rows,
    )


def advance_sequence(sql: SqlConnection, table: str) -> None:
    """PostgreSQL: make the next ``seq`` of ``table`` follow every row's. Only ever forward:
    ``setval`` outlives a rollback, and a lowered sequence would hand out taken values."""
    if sql.dialect != "postgresql":
        return
    sequence = f"pg_get_serial_sequence('{table}', 'seq')"
    sql.execute(
        f"SELECT setval({sequence}, greatest(coalesce(max(seq), 0), "
        f"coalesce(pg_sequence_last_value({sequence}::regclass), 0), 1)) FROM {table}"
    )
