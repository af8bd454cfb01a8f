"""Fixtures shared by every suite: the store backends the contract runs against (and, through
``tests/xdist_groups.py``, how the suite shares out over pytest-xdist workers).

``store_url`` is parametrized over both backends (ids ``sqlite`` and ``postgresql``): a new
SQLite file, or an empty database of its own on one real PostgreSQL server started for the
whole session; ``store`` is that database with ``tests/data/catalog.yaml`` applied.
Only the PostgreSQL leg starts that server (lazily, through ``request.getfixturevalue``), and if
it cannot start, every PostgreSQL test fails with the reason: never a skip, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.store.base import OperatorStore
from marketmeter.store.open import is_postgres, open_store
from tests.postgres_server import PostgresServer, shared_server

CATALOG = Path(__file__).parent / "data" / "catalog.yaml"
BACKENDS = ["sqlite", "postgresql"]

OpenStore = Callable[[str], OperatorStore]
# How the tests share out over pytest-xdist workers: tests/xdist_groups.py.
pytest_plugins = ["tests.xdist_groups"]


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The test process's PostgreSQL server (``tests.postgres_server.shared_server``, also used
    by the end-to-end suite); a failure to start fails every PostgreSQL test with the reason."""
    try:
        return shared_server()
    except Exception as error:
        pytest.fail(f"cannot start the test PostgreSQL server: {error}", pytrace=False)


class PostgresDatabases:
    """The test databases of one server. Each test gets a database no other test uses, as
    empty as a new one; databases are recycled rather than created per test (``CREATE
    DATABASE`` copies a template, some 8 MB of writes; recycling costs milliseconds)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._free: list[str] = []

    def acquire(self) -> str:
        """The URL of a database that holds nothing."""
        return self._free.pop() if self._free else self.server.fresh_database()

    def release(self, url: str) -> None:
        """Empty ``url`` again, as ``CREATE DATABASE`` would leave it, and keep it for reuse:
        end its sessions, drop every schema with everything in it, recreate ``public`` and
        reset the database's settings."""
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            schemas = connection.execute(
                "SELECT nspname FROM pg_namespace "
                "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            ).fetchall()
            for (schema,) in schemas:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
            connection.execute("CREATE SCHEMA public")
            name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
            connection.execute(f'ALTER DATABASE "{name}" RESET ALL')
        self._free.append(url)


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: PostgresServer) -> PostgresDatabases:
    return PostgresDatabases(postgres_server)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend: a new SQLite file, or a PostgreSQL
    database no other test uses (emptied again after the test)."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    assert request.param == "postgresql", request.param
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.acquire()
    try:
        yield url
    finally:
        databases.release(url)


@pytest.fixture
def backend(store_url: str) -> str:
    """``sqlite`` or ``postgresql``: the backend of this test's ``store_url``."""
    return "postgresql" if is_postgres(store_url) else "sqlite"


@pytest.fixture
def open_test_store() -> Iterator[OpenStore]:
    """``open_store`` for the test; every store it opened is closed at the end (closing twice
    is harmless, so tests may close their stores themselves)."""
    opened: list[OperatorStore] = []

    def open_(url: str) -> OperatorStore:
        store = open_store(url)
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in reversed(opened):
            store.close_now()


@pytest.fixture
def store(store_url: str, open_test_store: OpenStore) -> OperatorStore:
    """``tests/data/catalog.yaml`` applied to a new ledger, on each backend (no tokens issued;
    catalog version 1)."""
    ledger = open_test_store(store_url)
    ledger.apply_catalog_now(load_catalog_file(CATALOG))
    return ledger
