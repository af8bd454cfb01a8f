"""Writing many rows with one statement, on every backend.

SQLite runs ``executemany`` in C, a row a step of one prepared statement: as fast as it gets.
PostgreSQL would pay a round trip and a statement per row, so it gets multi-row ``INSERT ...
VALUES (...), (...)`` statements of up to ``ROWS_PER_STATEMENT`` rows, and from
``COPY_FROM`` rows on a ``COPY``: straight into the table for plain inserts, for an upsert
into a temporary table (dropped at the commit) and one ``INSERT ... SELECT ... ON CONFLICT``
from it. A multi-row upsert may not touch one key twice, so rows with a
key already seen keep the last one (what row-by-row upserts would leave).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from marketmeter.store.sql_connection import SqlConnection

__all__ = ["ROWS_PER_STATEMENT", "insert_rows"]

ROWS_PER_STATEMENT = 5_000  # 45,000 parameters at 9 columns (PostgreSQL takes 65,535)
COPY_FROM = 1_000
_HEAD = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\)")


def insert_rows(
    connection: SqlConnection,
    head: str,
    rows: Sequence[Sequence[object]],
    tail: str = "",
    key: int = 0,
) -> None:
    """``{head} VALUES (?, ...) {tail}`` for every row (``head``: ``INSERT INTO t (a, b)``;
    ``tail``: an ``ON CONFLICT`` clause); ``key``: how many leading columns are the conflict
    key (0: none)."""
    if not rows:
        return
    width = len(rows[0])
    one = f"({', '.join('?' for _ in range(width))})"
    if connection.dialect != "postgresql":
        connection.executemany(f"{head} VALUES {one} {tail}", rows)
        return
    if key:
        rows = list({tuple(row[:key]): row for row in rows}.values())
    copy_rows = getattr(connection, "copy_rows", None)
    match = _HEAD.fullmatch(head)
    if copy_rows is not None and match is not None and len(rows) >= COPY_FROM:
        _copied(connection, copy_rows, match[1], match[2].split(", "), rows, tail)
        return
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        part = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(one for _ in part)
        connection.execute(
            f"{head} VALUES {values} {tail}", [value for row in part for value in row]
        )


def _copied(
    connection: SqlConnection,
    copy_rows: Any,
    table: str,
    columns: list[str],
    rows: Sequence[Sequence[object]],
    tail: str,
) -> None:
    names = ", ".join(columns)
    if not tail:  # plain inserts: straight into the table
        copy_rows(table, columns, rows)
        return
    staging = f"bulk_{table}"
    connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    connection.execute(f"TRUNCATE {staging}")
    copy_rows(staging, columns, rows)
    connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {tail}")
