"""The billed-usage view, shared by ``GET /_marketmeter/usage`` and ``marketmeter usage list``.

Filters arrive as text (query string or CLI options) and are turned into a ``UsageQuery``
here, once, with an ``Refusal`` naming the field for anything unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from marketmeter.admin.inputs import iso, parse_count, parse_time
from marketmeter.metering.quantities import json_number, plain
from marketmeter.refusal import Refusal
from marketmeter.store.base import BilledRecord, UsageQuery

__all__ = ["MAX_LIMIT", "as_table", "record_json", "usage_query"]

MAX_LIMIT = 100_000


def usage_query(filters: Mapping[str, str | None]) -> UsageQuery:
    """A query from text filters: product, customer, dimension, from, to, limit."""
    known = {"product", "customer", "dimension", "from", "to", "limit"}
    for name in filters:
        if name not in known:
            raise Refusal(name, f"unknown filter; known: {', '.join(sorted(known))}")
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


def as_table(records: Sequence[BilledRecord]) -> str:
    """A plain-text table, one billed record a line."""
    header = ("HOUR (UTC)", "PRODUCT", "CUSTOMER", "DIMENSION", "QUANTITY", "METERING RECORD ID")
    rows = [
        (
            iso(r.hour),
            r.product_code,
            r.customer_identifier or r.customer_aws_account_id,
            r.dimension,
            plain(r.quantity),
            r.metering_record_id,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    total = sum((r.quantity for r in records), Decimal(0))
    lines.append(f"{len(records)} record(s), total quantity {plain(total)}")
    return "\n".join(lines)
