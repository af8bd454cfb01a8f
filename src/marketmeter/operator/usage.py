"""The billed-usage view: filters from text (a query string or command-line options) turned
into a ``UsageQuery`` once, with a ``Refusal`` naming the field for anything unreadable, and
each billed record as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketmeter.metering.quantities import json_number
from marketmeter.operator.inputs import iso, parse_count, parse_time
from marketmeter.refusal import Refusal
from marketmeter.store.base import BilledRecord, Store, UsageQuery

__all__ = ["MAX_LIMIT", "UsageOperations", "record_json", "usage_query"]

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


class UsageOperations:
    """What ``store``'s ledger billed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def records(self, filters: Mapping[str, str | None]) -> dict[str, Any]:
        """Billed records matching the text ``filters``, oldest usage first."""
        found = await self.store.usage(usage_query(filters))
        return {"records": [record_json(r) for r in found]}
