"""The usage summary: billed quantities summed per window (hour, day or month, UTC) and per
group (product, customer, dimension), with a total per dimension.

Quantities of different dimensions are never added together: the dimension is always a key of
every row and of every total (``groupBy`` chooses the keys besides it), since ``users`` and
``GB`` are not one unit. A month is its days summed here (the store sums hours and days; a
calendar month is not a fixed number of seconds). Filters are those of the billed records
(``product``, ``customer``, ``dimension``, ``from``, ``to``) with ``groupBy`` (comma-separated),
``window`` and ``limit`` (rows at most; ``truncated`` says when there were more).

``summary_csv`` is the one CSV rendering of a summary (the dashboard's download).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marketmeter.metering.quantities import json_number, plain
from marketmeter.operator.inputs import iso, parse_count
from marketmeter.operator.usage import usage_query
from marketmeter.refusal import Refusal
from marketmeter.store.base import Store, UsageSummaryQuery, UsageTotal

__all__ = [
    "GROUP_KEYS",
    "MAX_ROWS",
    "SUMMARY_FILTERS",
    "WINDOWS",
    "SummaryRequest",
    "UsageSummaries",
    "summary_csv",
    "summary_json",
    "summary_query",
]

GROUP_KEYS = ("product", "customer", "dimension")
WINDOWS = ("hour", "day", "month")
MAX_ROWS = 100_000
SUMMARY_FILTERS = ("product", "customer", "dimension", "from", "to", "groupBy", "window", "limit")
_SECONDS = {"hour": 3600, "day": 86400}
# a row's keys: window start and end, product, customer account, dimension
_Group = tuple[str, str, str | None, str | None, str]


def _group_by(text: str | None) -> tuple[str, ...]:
    """The keys named in ``text`` (comma-separated), in ``GROUP_KEYS`` order; dimension always."""
    names = {name.strip() for name in (text or "").split(",") if name.strip()}
    for name in names:
        if name not in GROUP_KEYS:
            raise Refusal("groupBy", f"{name!r} is not a key; keys: {', '.join(GROUP_KEYS)}")
    return tuple(key for key in GROUP_KEYS if key in names or key == "dimension")


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    """A summary asked for: what the store sums (always per product and dimension, per
    customer too when grouped by it), whether rows keep the product apart, and the row limit."""

    totals: UsageSummaryQuery
    by_product: bool
    limit: int

    @property
    def window(self) -> str:
        return self.totals.window


def summary_query(filters: Mapping[str, str | None]) -> SummaryRequest:
    """The summary asked for by text ``filters``."""
    for name in filters:
        if name not in SUMMARY_FILTERS:
            raise Refusal(name, f"unknown filter; known: {', '.join(SUMMARY_FILTERS)}")
    window = filters.get("window") or "day"
    if window not in WINDOWS:
        raise Refusal("window", f"must be one of {', '.join(WINDOWS)}")
    limit_text = filters.get("limit")
    limit = 10_000 if not limit_text else parse_count("limit", limit_text, 1, MAX_ROWS)
    keys = _group_by(filters.get("groupBy"))
    records = usage_query({k: v for k, v in filters.items() if k in (*GROUP_KEYS, "from", "to")})
    totals = UsageSummaryQuery(
        usage=records,
        window="hour" if window == "hour" else "month" if window == "month" else "day",
        by_customer="customer" in keys,
    )
    return SummaryRequest(totals, by_product="product" in keys, limit=limit)


def _window(start: float, window: str) -> tuple[str, str]:
    """The window holding ``start`` (a bucket's start) as ISO 8601 start and end."""
    if window == "month":
        moment = datetime.fromtimestamp(start, UTC)
        first = moment.replace(day=1, hour=0, minute=0, second=0)
        after = first.replace(year=first.year + 1, month=1) if first.month == 12 else None
        after = after or first.replace(month=first.month + 1)
        return iso(first.timestamp()), iso(after.timestamp())
    return iso(start), iso(start + _SECONDS[window])


def summary_json(totals: list[UsageTotal], request: SummaryRequest) -> dict[str, Any]:
    """The store's ``totals`` as the operator's JSON: rows by window and keys, then one total
    per dimension (per product and dimension when grouped by product)."""
    quantities: dict[_Group, Decimal] = {}
    counts: dict[_Group, int] = {}
    for total in totals:
        start, end = _window(total.window_start, request.window)
        product = total.product_code if request.by_product else None
        key = (start, end, product, total.customer_aws_account_id, total.dimension)
        quantities[key] = quantities.get(key, Decimal(0)) + total.quantity
        counts[key] = counts.get(key, 0) + total.records
    overall: dict[tuple[str, str], Decimal] = {}
    overall_counts: dict[tuple[str, str], int] = {}
    rows = []
    # by window, then keys (a month gathers days whose dimensions came in day order)
    ordered = sorted(quantities.items(), key=lambda kv: tuple(part or "" for part in kv[0]))
    for key, quantity in ordered:
        _, _, product, customer, dimension = key
        row: dict[str, Any] = {"windowStart": key[0], "windowEnd": key[1]}
        if request.by_product:
            row["productCode"] = product
        if request.totals.by_customer:
            row["customerAWSAccountId"] = customer
        row |= {"dimension": dimension, "quantity": _number(quantity), "records": counts[key]}
        rows.append(row)
        total_key = (product or "", dimension)
        overall[total_key] = overall.get(total_key, Decimal(0)) + quantity
        overall_counts[total_key] = overall_counts.get(total_key, 0) + counts[key]
    filters = request.totals.usage
    limit = request.limit
    return {
        "window": request.window,
        "groupBy": _keys(request),
        "from": iso(filters.start) if filters.start is not None else None,
        "to": iso(filters.end) if filters.end is not None else None,
        "rows": rows[:limit],
        "truncated": len(rows) > limit,
        "totals": [
            ({"productCode": product} if request.by_product else {})
            | {"dimension": dimension, "quantity": _number(quantity), "records": count}
            for (product, dimension), quantity in sorted(overall.items())
            for count in [overall_counts[(product, dimension)]]
        ],
    }


def _keys(request: SummaryRequest) -> list[str]:
    keys = ["product"] if request.by_product else []
    keys += ["customer"] if request.totals.by_customer else []
    return [*keys, "dimension"]


def _number(quantity: Decimal) -> int | float:
    return json_number(quantity)


def summary_csv(summary: Mapping[str, Any]) -> str:
    """A summary (``summary_json``'s value) as CSV: a header row, then one row per group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = ["windowStart", "windowEnd"]
    columns += ["productCode"] if "product" in summary["groupBy"] else []
    columns += ["customerAWSAccountId"] if "customer" in summary["groupBy"] else []
    columns += ["dimension", "quantity", "records"]
    writer.writerow(columns)
    for row in summary["rows"]:
        writer.writerow(plain(Decimal(str(row[c]))) if c == "quantity" else row[c] for c in columns)
    return out.getvalue()


class UsageSummaries:
    """Summaries of what ``store``'s ledger billed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def summary(self, filters: Mapping[str, str | None]) -> dict[str, Any]:
        request = summary_query(filters)
        return summary_json(await self.store.usage_summary(request.totals), request)
