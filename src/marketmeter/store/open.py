"""Choosing a backend from a database URL: ``sqlite:///path``, a plain path, or (later)
``postgresql://...``."""

from __future__ import annotations

from typing import Literal

from marketmeter.store.sqlite import SQLiteStore

__all__ = ["UnsupportedDatabase", "open_store", "sqlite_path"]


class UnsupportedDatabase(ValueError):
    """A database URL no backend here understands."""


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
            "(use a SQLite path or sqlite:///path)"
        )
    return url


def open_store(url: str, synchronous: Literal["full", "normal"] = "full") -> SQLiteStore:
    return SQLiteStore(sqlite_path(url), synchronous=synchronous)
