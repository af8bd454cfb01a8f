"""The catalog read before a store opens (``store.open.catalog_before_open``): what ``serve``
reads once and hands to every process it forks. A store given it keeps that very object while
the ledger's catalog version is its own, and reads the catalog again once it moved."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.catalog.model import Catalog
from marketmeter.store.open import catalog_before_open
from marketmeter.store.sqlite import SQLiteStore

CATALOG = Path(__file__).resolve().parent.parent / "data" / "catalog.yaml"


def _ledger_with_catalog(path: Path) -> int:
    store = SQLiteStore(path)
    try:
        return store.apply_catalog_now(load_catalog_file(CATALOG))
    finally:
        store.close_now()


def test_the_catalog_of_an_existing_ledger_is_read_without_opening_it(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    version = _ledger_with_catalog(path)
    read = catalog_before_open(str(path))
    assert read is not None
    assert read.version == version
    stored = SQLiteStore(path)
    try:
        assert read.catalog == stored.catalog_snapshot_now().catalog
    finally:
        stored.close_now()
    assert catalog_before_open(f"sqlite:///{path}") == read


def test_a_store_keeps_the_catalog_it_was_given_until_the_catalog_moves(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _ledger_with_catalog(path)
    read = catalog_before_open(str(path))
    assert read is not None
    serving, other = SQLiteStore(path, catalog=read), SQLiteStore(path)
    try:
        assert serving.catalog_snapshot_now() is read
        legacy = read.products["prod-legacy"]
        moved = other.apply_catalog_now(
            Catalog(products=(replace(legacy, product_code="prod-new"),))
        )
        snapshot = serving.catalog_snapshot_now()
        assert snapshot.version == moved
        assert "prod-new" in snapshot.products
        assert "prod-new" not in read.products
    finally:
        serving.close_now()
        other.close_now()


def test_nothing_is_read_where_there_is_no_ledger_at_this_schema(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert catalog_before_open(str(missing)) is None
    assert not missing.exists()  # not created by the attempt
    with sqlite3.connect(tmp_path / "bare.db") as bare:  # a SQLite file, no schema
        bare.execute("CREATE TABLE other (x INTEGER)")
    bare.close()
    assert catalog_before_open(str(tmp_path / "bare.db")) is None
    assert catalog_before_open(":memory:") is None
    assert catalog_before_open("postgresql://127.0.0.1:1/none") is None
    assert catalog_before_open("mysql://elsewhere/db") is None
