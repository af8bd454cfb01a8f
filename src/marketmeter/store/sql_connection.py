"""The one interface the dialect-neutral SQL modules (``catalog_sql``, ``registration_sql``)
write to: ``execute`` and ``executemany`` with ``?`` placeholders, as sqlite3 has them.

Each backend adapts its connection to it (``store.sqlite``: sqlite3 as is; ``store.postgres``:
psycopg, with ``?`` turned into ``%s``); ``dialect`` names the backend where the SQL must
differ (row locks). ``insertion_order`` names the column that orders rows
by insertion where a table has no other tiebreak (SQLite's ``rowid``, PostgreSQL's ``seq``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

__all__ = ["Rows", "SqlConnection"]


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    insertion_order: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...
