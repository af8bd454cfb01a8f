"""What only the SQLite store has: WAL and the synchronous pragma, the group-commit writer
thread, SQLite's migrations (a newer schema refused, a version-1 file upgraded with its rows
kept) and the request path's indexed queries. The behaviour both backends share is the contract
suite, test_store_contract.py."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest

import marketmeter.store.migrations
from marketmeter.catalog.model import Agreement, AgreementState
from marketmeter.metering.types import RegistrationToken, SigningKey
from marketmeter.store.base import SchemaError, UsageQuery
from marketmeter.store.migrations import migrations_for
from marketmeter.store.open import UnsupportedDatabase, open_store
from marketmeter.store.sqlite import SQLiteStore

MIGRATIONS = Path(marketmeter.store.migrations.__file__).parent
ALICE = "444455556666"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"


def test_fresh_database_is_at_the_newest_schema_version(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "l.db").close_now()
    with sqlite3.connect(tmp_path / "l.db") as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in migrations_for("sqlite")]
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "l.db").close_now()
    with sqlite3.connect(tmp_path / "l.db") as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    connection.close()
    with pytest.raises(SchemaError) as raised:
        SQLiteStore(tmp_path / "l.db")
    assert str(raised.value) == (
        "the database is at schema version 999, newer than this marketmeter "
        f"(knows up to {migrations_for('sqlite')[-1].version}); "
        "upgrade marketmeter"
    )


def test_a_failing_job_is_rolled_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    writer = store._writer

    def bad(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO sellers (account_id, name) VALUES ('000000000001', 'x')")
        raise RuntimeError("boom")

    def good(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO sellers (account_id, name) VALUES ('000000000002', 'y')")

    futures = [writer.submit(bad), writer.submit(good)]
    with pytest.raises(RuntimeError, match="boom"):
        futures[0].result()
    futures[1].result()
    store.close_now()
    with sqlite3.connect(tmp_path / "l.db") as connection:
        rows = connection.execute("SELECT account_id FROM sellers").fetchall()
    assert rows == [("000000000002",)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT version FROM catalog_state WHERE id = 1",
        "SELECT metering_record_id, quantity_micros FROM usage_records "
        "WHERE hour = 1 AND scope = 'p' AND customer_account = 'c' AND dimension = 'd'",
    ],
)
def test_request_path_queries_use_an_index(tmp_path: Path, sql: str) -> None:
    SQLiteStore(tmp_path / "l.db").close_now()
    with sqlite3.connect(tmp_path / "l.db") as connection:
        plan = " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}"))
    connection.close()
    assert plan.startswith("SEARCH"), plan
    assert "SCAN" not in plan


@pytest.mark.parametrize(
    ("synchronous", "pragma", "described"),
    [("full", 2, "FULL"), ("normal", 1, "NORMAL")],
)
def test_the_synchronous_setting_reaches_every_connection(
    tmp_path: Path, synchronous: Literal["full", "normal"], pragma: int, described: str
) -> None:
    store = open_store(str(tmp_path / "l.db"), synchronous=synchronous)
    assert isinstance(store, SQLiteStore)
    try:
        assert store.describe() == f"SQLite {tmp_path / 'l.db'} (WAL, synchronous={described})"
        assert store._watch.execute("PRAGMA synchronous").fetchone() == (pragma,)
        assert store._watch.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        written = store._writer.submit(
            lambda connection: (
                connection.execute("PRAGMA synchronous").fetchone(),
                connection.execute("PRAGMA wal_autocheckpoint").fetchone(),
            )
        )
        # the writer never checkpoints as it commits (store.sqlite_checkpoints does)
        assert written.result() == ((pragma,), (0,))
    finally:
        store.close_now()


def test_sqlite_urls_and_paths_open_the_same_file(tmp_path: Path) -> None:
    for url in (str(tmp_path / "l.db"), f"sqlite:///{tmp_path / 'l.db'}"):
        store = open_store(url)
        assert isinstance(store, SQLiteStore)
        assert store.path == str(tmp_path / "l.db")
        store.close_now()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://l.db", "a SQLite URL is sqlite:///relative/path or sqlite:////abs/path"),
        (
            "mysql://u@h/db",
            "database scheme 'mysql' is not supported by this marketmeter "
            "(use a SQLite path, sqlite:///path or postgresql://...)",
        ),
    ],
)
def test_unknown_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsupportedDatabase) as raised:
        open_store(url)
    assert str(raised.value) == message


# --- migration from schema version 1 ----------------------------------------------------------


def test_a_version_1_database_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    connection = sqlite3.connect(path)
    try:
        connection.executescript((MIGRATIONS / "0001_initial.sqlite.sql").read_text())
        connection.executescript(
            """
            CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL);
            INSERT INTO schema_migrations VALUES (1, 'initial', 1.0);
            INSERT INTO sellers VALUES ('111122223333', 'Seller');
            INSERT INTO products (product_code, seller_account_id, kind, integration)
                VALUES ('prod-legacy', '111122223333', 'saas', 'legacy');
            INSERT INTO dimensions VALUES ('prod-legacy', 'users', 0);
            INSERT INTO buyers VALUES ('444455556666', 'cust-alice', 'Alice');
            UPDATE catalog_state SET version = 7;
            INSERT INTO usage_records (hour, scope, customer_account, dimension, quantity_micros,
                metering_record_id, product_code, license_arn, customer_identifier,
                usage_timestamp, allocations, received_at)
                VALUES (1795435200, 'product:prod-legacy', '444455556666', 'users', 3000000,
                    'old-id', 'prod-legacy', NULL, 'cust-alice', 1795435260, NULL, 1795435261);
            """
        )
        connection.execute(
            "INSERT INTO agreements VALUES (?, ?, 'prod-legacy', 'subscribed', 0, NULL)",
            (ALICE_LEGACY, ALICE),
        )
        connection.commit()
    finally:
        connection.close()

    store = SQLiteStore(path)
    try:
        with sqlite3.connect(path) as check:
            versions = check.execute("SELECT version, name FROM schema_migrations").fetchall()
        check.close()
        assert versions == [
            (1, "initial"),
            (2, "registration"),
            (3, "snapshots"),
            (4, "lifecycle"),
            (5, "delivery_targets"),
            (6, "entitlements"),
            (7, "offers"),
            (8, "catalog_digest"),
        ]
        snapshot = store.catalog_snapshot_now()
        assert snapshot.version == 7
        assert snapshot.agreements_by_license[ALICE_LEGACY] == Agreement(
            ALICE_LEGACY, ALICE, "prod-legacy", AgreementState.SUBSCRIBED, 0.0, None, False
        )
        assert snapshot.buyers[ALICE].customer_identifier == "cust-alice"
        [row] = asyncio.run(store.usage(UsageQuery()))
        assert (row.metering_record_id, row.quantity, row.operation, row.instance) == (
            "old-id",
            Decimal(3),
            "BatchMeterUsage",
            None,
        )
        # the version-2 tables work
        token = RegistrationToken("tok-1", "prod-legacy", ALICE, ALICE_LEGACY, 1000.0)
        asyncio.run(store.issue_tokens([token]))
        assert asyncio.run(store.registration_token("tok-1")) == token
        key = SigningKey(1, "private-1", "public-1", 100.0)
        assert asyncio.run(store.add_signing_key(key, None)) is True
    finally:
        store.close_now()

    SQLiteStore(path).close_now()  # opening again applies nothing more
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(migrations_for("sqlite")),
        )
    check.close()
