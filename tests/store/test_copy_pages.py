"""``db copy`` reads its source page by page (keyset pages of ``store.copy.COPY_KEYS``) and
reports each batch to its progress bar: with pages of two rows, every row still arrives, in
order, and the batches add up to ``copy_size``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from marketmeter.store import copy
from marketmeter.store.base import OperatorStore, UsageQuery
from tests.conftest import OpenStore
from tests.store.test_store_contract import BOB, HOUR, usage_entry


def test_a_copy_in_small_pages_moves_every_row_in_order(
    store: OperatorStore,
    open_test_store: OpenStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asyncio.run(
        store.bill(
            [
                usage_entry("r1", HOUR + 10),
                usage_entry("r2", HOUR + 20, account=BOB),
                usage_entry("r3", HOUR + 5, dimension="api_calls"),
                usage_entry("r4", HOUR + 3700),
                usage_entry("r5", HOUR + 3800, account=BOB),
            ]
        )
    )
    monkeypatch.setattr(copy, "_BATCH", 2)
    target = open_test_store(str(tmp_path / "copy.db"))
    batches: list[int] = []

    report = copy.copy_ledger(store, target, batches.append)

    assert batches == [2, 2, 1]
    assert sum(batches) == copy.copy_size(store) == 5
    assert report.counts["usage_records"] == 5
    everything = UsageQuery(limit=10)
    assert target.usage_now(everything) == store.usage_now(everything)
    pages = asyncio.run(target.usage_page(everything, 0, 10))
    assert [r.metering_record_id for r in pages] == ["r1", "r2", "r3", "r4", "r5"]
