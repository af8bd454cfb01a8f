"""A ledger entry as the row every backend writes to ``usage_records``, in column order.

Columns: hour, scope, customer_account, dimension, quantity_micros, metering_record_id,
product_code, license_arn, customer_identifier, usage_timestamp, allocations (JSON text),
received_at, operation, instance. ``BILLED`` reads back what the ledger holds for a key.
``each_request`` splits what several requests' rows, billed together, came to.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import TypeVar

import orjson

from marketmeter.metering.quantities import json_number
from marketmeter.metering.types import LedgerEntry, UsageAllocation

__all__ = [
    "BILLED",
    "LEDGER_COLUMNS",
    "LedgerRow",
    "allocations_json",
    "each_request",
    "ledger_row",
]

T = TypeVar("T")

LEDGER_COLUMNS = (
    "hour, scope, customer_account, dimension, quantity_micros, metering_record_id, "
    "product_code, license_arn, customer_identifier, usage_timestamp, allocations, "
    "received_at, operation, instance"
)

# What the ledger holds for a key (its first row), by the dedupe key's unique index.
BILLED = (
    "SELECT metering_record_id, quantity_micros FROM usage_records "
    "WHERE hour = ? AND scope = ? AND customer_account = ? AND dimension = ?"
)

LedgerRow = tuple[
    int,
    str,
    str,
    str,
    int,
    str,
    str,
    str | None,
    str | None,
    float,
    str | None,
    float,
    str,
    str | None,
]


def ledger_row(entry: LedgerEntry) -> LedgerRow:
    record = entry.record
    return (
        entry.hour,
        entry.scope,
        entry.customer_account,
        entry.dimension,
        entry.quantity_micros,
        entry.metering_record_id,
        entry.product_code,
        record.license_arn,
        record.customer_identifier,
        float(record.timestamp),  # one type for the column (a batch may mix 1 and 1.5)
        allocations_json(record.allocations),
        entry.received_at,
        entry.operation,
        entry.instance,
    )


def allocations_json(allocations: tuple[UsageAllocation, ...] | None) -> str | None:
    """Allocations as stored: ``[{"quantity": n, "tags": [{"key", "value"}]}]``."""
    if allocations is None:
        return None
    return orjson.dumps(
        [
            {
                "quantity": json_number(allocation.amount),
                "tags": [{"key": t.key, "value": t.value} for t in allocation.tags or ()],
            }
            for allocation in allocations
        ]
    ).decode()


def each_request(outcomes: Sequence[T] | None, requests: Sequence[Sized]) -> list[list[T] | None]:
    """Each request's share of the outcomes of all their rows billed together, in order: None
    for every request when ``outcomes`` is None (every row was new)."""
    if outcomes is None:
        return [None] * len(requests)
    shares: list[list[T] | None] = []
    start = 0
    for request in requests:
        shares.append(list(outcomes[start : start + len(request)]))
        start += len(request)
    return shares
