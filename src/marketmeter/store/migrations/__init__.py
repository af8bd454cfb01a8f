"""The schema's one versioned history: ``NNNN_name.<dialect>.sql`` files, applied in order.

Each backend applies the files of its dialect and records them in ``schema_migrations``;
a database whose version is newer than the newest file here is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from marketmeter.store.base import SchemaError
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "SCHEMA_MIGRATIONS_TABLE",
    "Migration",
    "current_version",
    "migrations_for",
    "pending",
    "statements",
]

# Where each backend records the migrations it applied (same DDL on both).
SCHEMA_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


def current_version(connection: SqlConnection) -> int:
    """The newest migration recorded in ``schema_migrations`` (0 if none)."""
    row = connection.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0) if row else 0


_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.(?P<dialect>[a-z]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_for(dialect: str) -> list[Migration]:
    """The migrations of one dialect (``sqlite``, ``postgresql``), oldest first."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.fullmatch(entry.name)
        if match and match["dialect"] == dialect:
            found.append(Migration(int(match["version"]), match["name"], entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    return found


def statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations keep ``;`` out of literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def pending(dialect: str, current: int) -> list[Migration]:
    """The migrations a database at schema version ``current`` still needs, oldest first;
    ``SchemaError`` if the database is newer than every migration known here."""
    known = migrations_for(dialect)
    newest = known[-1].version if known else 0
    if current > newest:
        raise SchemaError(
            f"the database is at schema version {current}, newer than this marketmeter "
            f"(knows up to {newest}); upgrade marketmeter"
        )
    return [migration for migration in known if migration.version > current]
