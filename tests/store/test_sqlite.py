"""The SQLite store: migrations, the group-commit writer, the dedupe key, the catalog cache."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from marketmeter.catalog.loader import load_catalog, load_catalog_file
from marketmeter.metering.types import LedgerEntry, UsageRecord
from marketmeter.store.base import SchemaError, UsageQuery
from marketmeter.store.migrations import migrations_for
from marketmeter.store.sqlite import SQLiteStore

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"


def entry(n: int, quantity: int = 1, hour: int = 3600 * 490_000) -> LedgerEntry:
    record = UsageRecord(
        timestamp=hour + 5, dimension="users", quantity=quantity, customer_identifier=f"c{n}"
    )
    return LedgerEntry(
        hour=hour,
        scope="product:p",
        customer_account=f"{n:012d}",
        dimension="users",
        quantity_micros=quantity * 1_000_000,
        metering_record_id=f"id-{n}-{quantity}",
        product_code="p",
        record=record,
        received_at=1.0,
    )


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
    with pytest.raises(SchemaError, match="schema version 999, newer than this marketmeter"):
        SQLiteStore(tmp_path / "l.db")


def test_insert_is_the_duplicate_check(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    try:
        first = asyncio.run(store.bill([entry(1, 5), entry(1, 5), entry(1, 6)]))
        assert [(o.metering_record_id, o.quantity_micros, o.inserted) for o in first] == [
            ("id-1-5", 5_000_000, True),
            ("id-1-5", 5_000_000, False),
            ("id-1-5", 5_000_000, False),
        ]
        assert len(store.usage_now(UsageQuery())) == 1
    finally:
        store.close_now()


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


def test_concurrent_billing_from_many_threads_stores_each_key_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    outcomes: list[list[str]] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        for n in range(50):
            # every worker bills the same 50 keys, half with a conflicting quantity
            result = asyncio.run(store.bill([entry(n, quantity=1 + (worker % 2))]))
            with lock:
                outcomes.append(
                    [f"{o.metering_record_id}:{o.quantity_micros // 1_000_000}" for o in result]
                )

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.usage_now(UsageQuery(limit=1000))
    store.close_now()
    assert len(rows) == 50
    stored = {r.customer_aws_account_id: f"{r.metering_record_id}:{r.quantity}" for r in rows}
    for outcome in outcomes:
        (answer,) = outcome
        assert answer in stored.values()
    assert len(outcomes) == 400


def test_acknowledged_rows_survive_close_and_reopen(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    asyncio.run(store.bill([entry(n) for n in range(25)]))
    store.close_now()
    reopened = SQLiteStore(tmp_path / "l.db")
    try:
        assert len(reopened.usage_now(UsageQuery())) == 25
        again = asyncio.run(reopened.bill([entry(3)]))
        assert (again[0].metering_record_id, again[0].inserted) == ("id-3-1", False)
    finally:
        reopened.close_now()


def test_catalog_changes_by_another_process_refresh_the_snapshot(tmp_path: Path) -> None:
    server = SQLiteStore(tmp_path / "l.db")
    cli = SQLiteStore(tmp_path / "l.db")
    try:
        cli.apply_catalog_now(load_catalog_file(CATALOG))
        before = server.catalog_snapshot_now()
        assert "prod-legacy" in before.products
        extra = load_catalog(
            "buyers: [{account_id: '121212121212', customer_identifier: cust-new}]",
            existing=before.catalog,
        )
        cli.apply_catalog_now(extra)
        after = server.catalog_snapshot_now()
        assert after.version == before.version + 1
        assert after.buyers_by_customer_identifier["cust-new"].account_id == "121212121212"
        assert server.catalog_snapshot_now() is after  # unchanged version: cached
    finally:
        cli.close_now()
        server.close_now()


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
