"""Usage exports: billed records or summary totals as CSV or JSON Lines, produced page by page
so that a ledger of any size is exported in constant memory.

``export_request`` reads the text filters once (a ``Refusal`` names what is wrong): the usage
filters of ``operator.usage``, ``format`` (csv or jsonl) and, for totals instead of records,
``window`` (hour, day or month) with ``group``. ``UsageExport.size`` says how many records (or
totals) will come, for a progress bar; ``UsageExport.chunks`` yields the text a page at a time:
records are read in keyset pages of the ledger (``Store.usage_page``, in the order they were
billed), never all at once. Records billed while an export runs may or may not be in it.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from marketmeter.metering.quantities import plain
from marketmeter.operator.inputs import iso
from marketmeter.operator.usage import (
    record_json,
    summary_query,
    total_json,
    usage_query,
)
from marketmeter.refusal import Refusal
from marketmeter.store.base import (
    BilledRecord,
    Store,
    UsageQuery,
    UsageSummaryQuery,
    UsageTotal,
)

__all__ = [
    "EXPORT_FORMATS",
    "MEDIA_TYPES",
    "RECORD_COLUMNS",
    "ExportChunk",
    "ExportFormat",
    "ExportRequest",
    "UsageExport",
    "UsageExports",
    "export_request",
]

ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl")
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
}
PAGE = 5000

# A record's CSV columns: record_json's fields, times as ISO 8601 UTC, allocations as JSON.
RECORD_COLUMNS = (
    "meteringRecordId",
    "productCode",
    "customerAWSAccountId",
    "customerIdentifier",
    "licenseArn",
    "dimension",
    "quantity",
    "timestamp",
    "hour",
    "receivedAt",
    "operation",
    "instance",
    "usageAllocations",
)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: records matching ``records``, or (``summary`` given) its totals."""

    format: ExportFormat
    records: UsageQuery
    summary: UsageSummaryQuery | None = None


def export_request(filters: Mapping[str, str | None]) -> ExportRequest:
    """The export the text ``filters`` ask for: the usage filters, ``format`` (default csv),
    and ``window``/``group`` for totals instead of records."""
    given = dict(filters)
    chosen = given.pop("format", None) or "csv"
    formats: dict[str, ExportFormat] = {f: f for f in EXPORT_FORMATS}
    found = formats.get(chosen)
    if found is None:
        raise Refusal("format", f"must be one of: {', '.join(EXPORT_FORMATS)}")
    if "limit" in given:
        raise Refusal("limit", "an export has no limit: narrow it with from and to")
    if given.get("window") or given.get("group"):
        summary = summary_query(given)
        return ExportRequest(found, summary.usage, summary)
    return ExportRequest(found, usage_query(given))


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """Some lines of the export, and how many records (or totals) they hold."""

    text: str
    rows: int


@functools.lru_cache(maxsize=1024)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _iso(epoch: float) -> str:
    """``operator.inputs.iso``, to the microsecond and rounded as ``datetime`` rounds (half to
    even), at a tenth of its cost: an export formats three times a record."""
    if epoch < 0:
        return iso(epoch)
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    base = _second(seconds)
    return f"{base}.{micros:06d}Z" if micros else f"{base}Z"


def _csv(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _record_row(record: BilledRecord) -> list[Any]:
    allocations = record.allocations
    return [
        record.metering_record_id,
        record.product_code,
        record.customer_aws_account_id,
        record.customer_identifier or "",
        record.license_arn or "",
        record.dimension,
        plain(record.quantity),
        _iso(record.usage_timestamp),
        _iso(record.hour),
        _iso(record.received_at),
        record.operation,
        record.instance or "",
        orjson.dumps(allocations).decode() if allocations is not None else "",
    ]


def _jsonl(values: list[dict[str, Any]]) -> str:
    return "".join(orjson.dumps(v).decode() + "\n" for v in values)


class UsageExport:
    """One export of ``store``'s ledger."""

    def __init__(self, store: Store, request: ExportRequest, page: int = PAGE) -> None:
        self.store = store
        self.request = request
        self.page = page
        self._totals: list[UsageTotal] | None = None

    async def size(self) -> int:
        """How many records (or totals) the export holds, as of now."""
        if self.request.summary is not None:
            return len(await self._summary(self.request.summary))
        return await self.store.usage_count(self.request.records)

    async def chunks(self) -> AsyncGenerator[ExportChunk, None]:
        """The export's text: a header line first for CSV, then a chunk per page."""
        if self.request.summary is not None:
            async for chunk in self._summary_chunks(self.request.summary):
                yield chunk
            return
        csv_out = self.request.format == "csv"
        if csv_out:
            yield ExportChunk(_csv([list(RECORD_COLUMNS)]), 0)
        after = 0
        while True:
            records = await self.store.usage_page(self.request.records, after, self.page)
            if not records:
                return
            after = records[-1].seq
            if csv_out:
                text = _csv([_record_row(r) for r in records])
            else:
                text = _jsonl([record_json(r) for r in records])
            yield ExportChunk(text, len(records))

    async def _summary(self, summary: UsageSummaryQuery) -> list[UsageTotal]:
        if self._totals is None:
            self._totals = await self.store.usage_summary(summary)
        return self._totals

    async def _summary_chunks(self, summary: UsageSummaryQuery) -> AsyncIterator[ExportChunk]:
        # A summary is as long as its windows times keys, not as the ledger: it is read whole.
        totals = await self._summary(summary)
        by_customer = summary.by_customer
        if self.request.format == "csv":
            header = ["window", "productCode", "dimension"]
            header += ["customerAWSAccountId"] if by_customer else []
            yield ExportChunk(_csv([[*header, "quantity", "records"]]), 0)
        for start in range(0, len(totals), self.page):
            part = totals[start : start + self.page]
            if self.request.format == "jsonl":
                text = _jsonl([total_json(t, by_customer) for t in part])
            else:
                text = _csv([_total_row(t, by_customer) for t in part])
            yield ExportChunk(text, len(part))


def _total_row(total: UsageTotal, by_customer: bool) -> list[Any]:
    row: list[Any] = [iso(total.window_start), total.product_code, total.dimension]
    if by_customer:
        row.append(total.customer_aws_account_id)
    return [*row, plain(total.quantity), total.records]


class UsageExports:
    """Exports of ``store``'s ledger, one per request."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, filters: Mapping[str, str | None]) -> UsageExport:
        """The export ``filters`` ask for (``export_request``); nothing is read yet."""
        return UsageExport(self.store, export_request(filters))
