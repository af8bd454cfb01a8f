"""Choosing a backend from a database URL: ``sqlite:///path`` or a plain path (embedded
SQLite), or ``postgresql://...`` / ``postgres://...`` (PostgreSQL, shared by several nodes)."""

from __future__ import annotations

from typing import Literal

from marketmeter.store.base import OperatorStore
from marketmeter.store.sqlite import SQLiteStore

__all__ = ["POSTGRES_SCHEMES", "UnsupportedDatabase", "is_postgres", "open_store", "sqlite_path"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class UnsupportedDatabase(ValueError):
    """A database URL no backend here understands."""


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def sqlite_path(url: str) -> str:
    """The file path of a SQLite URL or plain path."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        raise UnsupportedDatabase("a SQLite URL is sqlite:///relative/path or sqlite:////abs/path")
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise UnsupportedDatabase(
            f"database scheme {scheme!r} is not supported by this marketmeter "
            "(use a SQLite path, sqlite:///path or postgresql://...)"
        )
    return url


def open_store(
    url: str, synchronous: Literal["full", "normal"] = "full", pool_size: int = 16
) -> OperatorStore:
    """The store at ``url``, migrated to this marketmeter's schema."""
    if is_postgres(url):
        from marketmeter.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size)
    return SQLiteStore(sqlite_path(url), synchronous=synchronous)
