"""Choosing a backend from a database URL: ``sqlite:///path`` or a plain path (embedded
SQLite), or ``postgresql://...`` / ``postgres://...`` (PostgreSQL, shared by several nodes).

``catalog_before_open`` reads an embedded ledger's catalog without opening its store (no
thread, no writer): ``serve --workers`` reads it before it forks, and every process of the
server starts with that one copy (``open_store``'s ``catalog``) instead of reading its own."""

from __future__ import annotations

from typing import Literal

from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.store.base import OperatorStore
from marketmeter.store.sqlite import SQLiteStore, read_catalog_unopened

__all__ = [
    "POSTGRES_SCHEMES",
    "UnsupportedDatabase",
    "catalog_before_open",
    "is_postgres",
    "open_store",
    "sqlite_path",
]

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
    url: str,
    synchronous: Literal["full", "normal"] = "full",
    pool_size: int = 16,
    catalog: CatalogSnapshot | None = None,
) -> OperatorStore:
    """The store at ``url``, migrated to this marketmeter's schema; ``catalog`` is its catalog
    as read already (``catalog_before_open``): the store keeps it until the catalog moves."""
    if is_postgres(url):
        from marketmeter.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size, catalog=catalog)
    return SQLiteStore(sqlite_path(url), synchronous=synchronous, catalog=catalog)


def catalog_before_open(url: str) -> CatalogSnapshot | None:
    """The catalog of the embedded ledger at ``url`` if it exists at this code's schema, read
    without opening the store; None otherwise, and for PostgreSQL (whose processes each read
    theirs on first use)."""
    if is_postgres(url):
        return None
    try:
        return read_catalog_unopened(sqlite_path(url))
    except UnsupportedDatabase:
        return None
