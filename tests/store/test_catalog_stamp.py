"""The catalog stamp (store/catalog_stamp.py): the request path learns the catalog version from
shared memory, and a change committed by any store on the same file (another process's, here
a second ``SQLiteStore``) holds for the very next lookup of every other one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.catalog.model import Catalog
from marketmeter.store.catalog_stamp import CatalogStamp, stamp_path
from marketmeter.store.sqlite import SQLiteStore

CATALOG = Path(__file__).resolve().parent.parent / "data" / "catalog.yaml"


def test_a_catalog_applied_by_another_store_is_seen_at_the_next_lookup(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    serving, other = SQLiteStore(path), SQLiteStore(path)
    try:
        assert serving.catalog_snapshot_now().catalog == Catalog()
        version = other.apply_catalog_now(load_catalog_file(CATALOG))
        snapshot = serving.catalog_snapshot_now()
        assert snapshot.version == version
        assert "prod-legacy" in snapshot.products
        assert serving.catalog_snapshot_now() is snapshot  # cached while nothing moved
    finally:
        serving.close_now()
        other.close_now()


def test_a_catalog_applied_by_another_process_is_seen_at_the_next_lookup(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    serving = SQLiteStore(path)
    try:
        serving.catalog_snapshot_now()
        apply = [sys.executable, "-m", "marketmeter", "catalog", "apply", str(CATALOG)]
        subprocess.run([*apply, "--db", str(path)], check=True, capture_output=True)
        assert "prod-legacy" in serving.catalog_snapshot_now().products
    finally:
        serving.close_now()


def test_the_stamp_holds_the_committed_version_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    store = SQLiteStore(path)
    try:
        version = store.apply_catalog_now(load_catalog_file(CATALOG))
    finally:
        store.close_now()
    stamp_file = stamp_path(str(path))
    assert stamp_file == f"{path}-catalog"
    assert stat.S_IMODE(os.stat(stamp_file).st_mode) == 0o600
    stamp = CatalogStamp(stamp_file)
    try:
        assert stamp.read() == version
        stamp.publish(lambda: 41)  # a version that moved is written
        assert stamp.read() == 41
    finally:
        stamp.close()


def test_databases_that_are_not_plain_files_have_no_stamp() -> None:
    assert stamp_path(":memory:") is None
    assert stamp_path("file:l.db?mode=ro") is None
    assert stamp_path("") is None
