"""The billed-usage view, shared by ``GET /_marketmeter/usage`` and ``marketmeter usage list``.

Filters arrive as text (query string or CLI options) and are turned into a ``UsageQuery``
here, once, with an ``AdminInputError`` naming the field for anything unreadable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marketmeter.metering.quantities import json_number, plain
from marketmeter.store.base import BilledRecord, UsageQuery

__all__ = ["MAX_LIMIT", "AdminInputError", "as_table", "parse_time", "record_json", "usage_query"]

MAX_LIMIT = 100_000


class AdminInputError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_time(field: str, text: str) -> float:
    """Epoch seconds from ISO 8601 (``2026-11-23T10:00:00Z``; no zone means UTC) or a number."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise AdminInputError(field, f"{text!r} is not a finite time")
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AdminInputError(field, f"{text!r} is neither ISO 8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def usage_query(filters: Mapping[str, str | None]) -> UsageQuery:
    """A query from text filters: product, customer, dimension, from, to, limit."""
    known = {"product", "customer", "dimension", "from", "to", "limit"}
    for name in filters:
        if name not in known:
            raise AdminInputError(name, f"unknown filter; known: {', '.join(sorted(known))}")
    start = filters.get("from")
    end = filters.get("to")
    limit_text = filters.get("limit")
    limit = 1000
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise AdminInputError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(limit_text)
    return UsageQuery(
        product_code=filters.get("product") or None,
        customer=filters.get("customer") or None,
        dimension=filters.get("dimension") or None,
        start=parse_time("from", start) if start else None,
        end=parse_time("to", end) if end else None,
        limit=limit,
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


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
        "hour": _iso(record.hour),
        "usageAllocations": record.allocations,
        "receivedAt": _iso(record.received_at),
    }


def as_table(records: Sequence[BilledRecord]) -> str:
    """A plain-text table, one billed record a line."""
    header = ("HOUR (UTC)", "PRODUCT", "CUSTOMER", "DIMENSION", "QUANTITY", "METERING RECORD ID")
    rows = [
        (
            _iso(r.hour),
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
