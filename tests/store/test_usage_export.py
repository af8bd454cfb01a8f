"""Usage pages, counts and summaries (``Store.usage_page``, ``usage_count``, ``usage_summary``)
on both backends, and an export (``operator.usage_export``) reading a ledger in constant memory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
from decimal import Decimal
from pathlib import Path

import orjson

from marketmeter.operator.usage_export import UsageExport, export_request
from marketmeter.store.base import OperatorStore, UsageQuery, UsageSummaryQuery, UsageTotal
from tests.conftest import OpenStore
from tests.store.test_store_contract import ALICE, BOB, HOUR, usage_entry

DAY = HOUR - HOUR % 86400  # 2026-11-23T00:00:00Z
DEC_1 = 1796083200  # 2026-12-01T00:00:00Z
NOV_1 = 1793491200  # 2026-11-01T00:00:00Z


def bill_sample(store: OperatorStore) -> None:
    asyncio.run(
        store.bill(
            [
                usage_entry("a1", HOUR + 10, micros=1_500_000),
                usage_entry("a2", HOUR + 3700, micros=2_250_000),
                usage_entry("b1", HOUR + 20, account=BOB, micros=4_000_000),
                usage_entry("api", HOUR + 30, dimension="api_calls", micros=7_000_000),
                usage_entry("ca", HOUR + 40, product="prod-ca", dimension="requests"),
                usage_entry("dec", DEC_1 + 5, micros=10_000_000),
            ]
        )
    )


def test_pages_follow_the_billing_order_and_the_filters(store: OperatorStore) -> None:
    bill_sample(store)
    everything = UsageQuery()
    first = asyncio.run(store.usage_page(everything, 0, 4))
    assert [r.metering_record_id for r in first] == ["a1", "a2", "b1", "api"]
    rest = asyncio.run(store.usage_page(everything, first[-1].seq, 4))
    assert [r.metering_record_id for r in rest] == ["ca", "dec"]
    assert asyncio.run(store.usage_page(everything, rest[-1].seq, 4)) == []
    alice_users = UsageQuery(customer="cust-alice", dimension="users", end=DEC_1)
    assert [r.metering_record_id for r in asyncio.run(store.usage_page(alice_users, 0, 9))] == [
        "a1",
        "a2",
    ]
    assert asyncio.run(store.usage_count(everything)) == 6
    assert asyncio.run(store.usage_count(alice_users)) == 2
    assert asyncio.run(store.usage_count(UsageQuery(product_code="prod-ca"))) == 1


def total(
    start: int, product: str, dimension: str, customer: str | None, q: str, n: int
) -> UsageTotal:
    return UsageTotal(float(start), product, dimension, customer, Decimal(q), n)


def test_summaries_sum_per_window_and_dimension_never_across(store: OperatorStore) -> None:
    bill_sample(store)

    def summary(window: str, by_customer: bool = False, **query: object) -> list[UsageTotal]:
        asked = UsageSummaryQuery(UsageQuery(**query), window, by_customer)  # type: ignore[arg-type]
        return asyncio.run(store.usage_summary(asked))

    assert summary("hour") == [
        total(HOUR, "prod-ca", "requests", None, "1", 1),
        total(HOUR, "prod-legacy", "api_calls", None, "7", 1),
        total(HOUR, "prod-legacy", "users", None, "5.5", 2),
        total(HOUR + 3600, "prod-legacy", "users", None, "2.25", 1),
        total(DEC_1, "prod-legacy", "users", None, "10", 1),
    ]
    assert summary("day", by_customer=True, product_code="prod-legacy") == [
        total(DAY, "prod-legacy", "api_calls", ALICE, "7", 1),
        total(DAY, "prod-legacy", "users", ALICE, "3.75", 2),
        total(DAY, "prod-legacy", "users", BOB, "4", 1),
        total(DEC_1, "prod-legacy", "users", ALICE, "10", 1),
    ]
    assert summary("month", dimension="users") == [
        total(NOV_1, "prod-legacy", "users", None, "7.75", 3),
        total(DEC_1, "prod-legacy", "users", None, "10", 1),
    ]
    assert summary("month", start=DEC_1) == [total(DEC_1, "prod-legacy", "users", None, "10", 1)]
    assert summary("day", customer="cust-nobody") == []


def export_text(store: OperatorStore, page: int = 2, **filters: str) -> str:
    async def run() -> str:
        export = UsageExport(store, export_request(filters), page=page)
        return "".join([chunk.text async for chunk in export.chunks()])

    return asyncio.run(run())


def test_exports_as_csv_and_json_lines(store: OperatorStore) -> None:
    bill_sample(store)
    rows = list(csv.DictReader(io.StringIO(export_text(store, product="prod-legacy"))))
    assert [r["meteringRecordId"] for r in rows] == ["a1", "a2", "b1", "api", "dec"]
    assert rows[0] == {
        "meteringRecordId": "a1",
        "productCode": "prod-legacy",
        "customerAWSAccountId": ALICE,
        "customerIdentifier": "",
        "licenseArn": "",
        "dimension": "users",
        "quantity": "1.5",
        "timestamp": "2026-11-23T12:00:10Z",
        "hour": "2026-11-23T12:00:00Z",
        "receivedAt": "2026-11-23T12:00:11Z",
        "operation": "BatchMeterUsage",
        "instance": "",
        "usageAllocations": "",
    }
    lines = export_text(store, format="jsonl", dimension="api_calls").splitlines()
    assert [orjson.loads(line)["quantity"] for line in lines] == [7]
    totals = export_text(store, window="month", group="customer", format="csv")
    assert totals.splitlines() == [
        "window,productCode,dimension,customerAWSAccountId,quantity,records",
        f"2026-11-01T00:00:00Z,prod-ca,requests,{ALICE},1,1",
        f"2026-11-01T00:00:00Z,prod-legacy,api_calls,{ALICE},7,1",
        f"2026-11-01T00:00:00Z,prod-legacy,users,{ALICE},3.75,2",
        f"2026-11-01T00:00:00Z,prod-legacy,users,{BOB},4,1",
        f"2026-12-01T00:00:00Z,prod-legacy,users,{ALICE},10,1",
    ]
    jsonl = export_text(store, window="day", format="jsonl", dimension="users", to=str(DEC_1))
    assert [orjson.loads(line) for line in jsonl.splitlines()] == [
        {
            "window": "2026-11-23T00:00:00Z",
            "productCode": "prod-legacy",
            "dimension": "users",
            "quantity": 7.75,
            "records": 3,
        }
    ]


def test_an_export_reads_the_ledger_in_constant_memory(
    tmp_path: Path, open_test_store: OpenStore
) -> None:
    """8,000 records exported by pages of 200: the export's peak memory is that of a page
    or two, a small part of what the records take held at once (SQLite; the paging is the
    same SQL on PostgreSQL)."""
    ledger = open_test_store(str(tmp_path / "big.db"))
    count, batch = 8_000, 500
    for start in range(0, count, batch):
        entries = [
            usage_entry(f"r{n}", HOUR + n % 3000, account=f"{n:012d}")
            for n in range(start, start + batch)
        ]
        asyncio.run(ledger.bill(entries))
    sink = io.StringIO()

    async def export(page: int) -> int:
        written = 0
        async for chunk in UsageExport(ledger, export_request({}), page=page).chunks():
            written += chunk.rows
            sink.write(chunk.text[:0])  # the text is made and dropped, as a stream does
        return written

    tracemalloc.start()
    try:
        assert asyncio.run(export(200)) == count
        _, paged_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held = ledger.usage_now(UsageQuery(limit=count))
        _, whole_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) == count
    assert paged_peak * 5 < whole_peak, (paged_peak, whole_peak)
