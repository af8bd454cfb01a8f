"""Shared fixtures of the rule tests: a fresh SQLite ledger loaded with the test catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.store.sqlite import SQLiteStore

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """``tests/data/catalog.yaml`` applied to a new ledger file (no tokens issued)."""
    ledger = SQLiteStore(tmp_path / "ledger.db")
    ledger.apply_catalog_now(load_catalog_file(CATALOG))
    try:
        yield ledger
    finally:
        ledger.close_now()
