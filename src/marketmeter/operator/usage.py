"""The billed-usage view: filters from text (a query string or command-line options) turned
into a ``UsageQuery`` (records) or a ``UsageSummaryQuery`` (totals per window) once, with a
``Refusal`` naming the field for anything unreadable; each billed record and each total as
JSON. Exports of either are ``operator.usage_export``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketmeter.metering.quantities import json_number
from marketmeter.operator.inputs import iso, parse_count, parse_time
from marketmeter.refusal import Refusal
from marketmeter.store.base import (
    BilledRecord,
    Store,
    UsageQuery,
    UsageSummaryQuery,
    UsageTotal,
    Window,
)

__all__ = [
    "FILTERS",
    "GROUPS",
    "MAX_LIMIT",
    "WINDOWS",
    "UsageOperations",
    "record_json",
    "summary_query",
    "total_json",
    "usage_query",
]

MAX_LIMIT = 100_000
FILTERS = ("product", "customer", "dimension", "from", "to")
GROUPS = ("product", "customer", "dimension")
WINDOWS: tuple[Window, ...] = ("hour", "day", "month")


def _check_known(filters: Mapping[str, str | None], known: set[str]) -> None:
    for name in filters:
        if name not in known:
            raise Refusal(name, f"unknown filter; known: {', '.join(sorted(known))}")


def usage_query(
    filters: Mapping[str, str | None], extra: frozenset[str] = frozenset()
) -> UsageQuery:
    """A query from text filters: product, customer, dimension, from, to, limit (and the
    names in ``extra``, which the caller reads)."""
    _check_known(filters, {*FILTERS, "limit", *extra})
    start = filters.get("from")
    end = filters.get("to")
    limit_text = filters.get("limit")
    limit = 1000 if limit_text is None else parse_count("limit", limit_text, 1, MAX_LIMIT)
    return UsageQuery(
        product_code=filters.get("product") or None,
        customer=filters.get("customer") or None,
        dimension=filters.get("dimension") or None,
        start=parse_time("from", start) if start else None,
        end=parse_time("to", end) if end else None,
        limit=limit,
    )


def summary_query(filters: Mapping[str, str | None]) -> UsageSummaryQuery:
    """A summary from text filters: product, customer, dimension, from, to (which records),
    ``window`` (hour, day or month; default day) and ``group`` (a comma-separated subset of
    product, customer, dimension). Totals are per product dimension whatever ``group`` says:
    product and dimension are always keys, never summed over; ``customer`` adds the
    customer's AWS account id to the key."""
    _check_known(filters, {*FILTERS, "window", "group"})
    windows: dict[str, Window] = {w: w for w in WINDOWS}
    window = windows.get(filters.get("window") or "day")
    if window is None:
        raise Refusal("window", f"must be one of: {', '.join(WINDOWS)}")
    groups = [g.strip() for g in (filters.get("group") or "").split(",") if g.strip()]
    for group in groups:
        if group not in GROUPS:
            raise Refusal("group", f"{group!r} is not a key; known: {', '.join(GROUPS)}")
    records = usage_query({k: v for k, v in filters.items() if k in FILTERS})
    return UsageSummaryQuery(
        usage=records,
        window=window,
        by_customer="customer" in groups,
    )


def total_json(total: UsageTotal, by_customer: bool) -> dict[str, Any]:
    """One total of a summary; ``customerAWSAccountId`` only when it is a key."""
    found: dict[str, Any] = {
        "window": iso(total.window_start),
        "productCode": total.product_code,
        "dimension": total.dimension,
    }
    if by_customer:
        found["customerAWSAccountId"] = total.customer_aws_account_id
    found["quantity"] = json_number(total.quantity)
    found["records"] = total.records
    return found


def _number(value: float) -> int | float:
    """Epoch seconds as sent: integral values print as integers."""
    return int(value) if value.is_integer() else value


def record_json(record: BilledRecord) -> dict[str, Any]:
    return {
        "meteringRecordId": record.metering_record_id,
        "productCode": record.product_code,
        "customerAWSAccountId": record.customer_aws_account_id,
        "customerIdentifier": record.customer_identifier,
        "licenseArn": record.license_arn,
        "dimension": record.dimension,
        "quantity": json_number(record.quantity),
        "timestamp": _number(record.usage_timestamp),
        "hour": iso(record.hour),
        "usageAllocations": record.allocations,
        "receivedAt": iso(record.received_at),
        "operation": record.operation,
        "instance": record.instance,
    }


class UsageOperations:
    """What ``store``'s ledger billed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def records(self, filters: Mapping[str, str | None]) -> dict[str, Any]:
        """Billed records matching the text ``filters``, oldest usage first."""
        found = await self.store.usage(usage_query(filters))
        return {"records": [record_json(r) for r in found]}

    async def summary(self, filters: Mapping[str, str | None]) -> dict[str, Any]:
        """Billed quantities summed per window and key (``summary_query``), in window order:
        ``{"window": "day", "groupBy": ["product", "dimension"], "totals": [...]}``."""
        query = summary_query(filters)
        totals = await self.store.usage_summary(query)
        keys = ["product", *(["customer"] if query.by_customer else []), "dimension"]
        return {
            "window": query.window,
            "groupBy": keys,
            "totals": [total_json(t, query.by_customer) for t in totals],
        }
