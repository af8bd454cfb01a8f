"""Raw SQL on a test's store, for tests that inspect rows or fake a state the contract cannot
make (an old snapshot, a restarted sequence): through the SQL backends' private primitives
(``store.sql_store.SqlStore``), which the contract does not offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from marketmeter.store.base import OperatorStore
from marketmeter.store.sql_connection import SqlConnection
from marketmeter.store.sql_store import SqlStore

__all__ = ["raw_read", "raw_write"]

T = TypeVar("T")


def _sql_store(store: OperatorStore) -> SqlStore:
    assert isinstance(store, SqlStore), f"{type(store).__name__} is not a SQL store"
    return store


def raw_read(store: OperatorStore, work: Callable[[SqlConnection], T]) -> T:
    """Run ``work`` on a connection of ``store``'s database."""
    return _sql_store(store)._read_now(work)


def raw_write(store: OperatorStore, work: Callable[[SqlConnection], T]) -> T:
    """Run ``work`` in one committed transaction of ``store``'s database."""
    return _sql_store(store)._write_now(work)
