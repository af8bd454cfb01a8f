"""Turning a usage record the rules accepted into the ledger entry that bills it.

Shared by BatchMeterUsage and MeterUsage: the hour bucket (the UTC hour of the timestamp) and
the exact quantity in millionths are computed here, once; the caller says which dedupe scope
the record belongs to (docs/batch-meter-usage.md, docs/meter-usage.md).
"""

from __future__ import annotations

from marketmeter.metering.quantities import to_micros
from marketmeter.metering.types import LedgerEntry, UsageRecord
from marketmeter.metering.windows import floor_to_hour

__all__ = ["ledger_entry"]


def ledger_entry(
    record: UsageRecord,
    *,
    scope: str,
    customer_account: str,
    product_code: str,
    metering_record_id: str,
    received_at: float,
    operation: str = "BatchMeterUsage",
    instance: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        hour=floor_to_hour(record.timestamp),
        scope=scope,
        customer_account=customer_account,
        dimension=record.dimension,
        quantity_micros=to_micros(record.billed_quantity),
        metering_record_id=metering_record_id,
        product_code=product_code,
        record=record,
        received_at=received_at,
        operation=operation,
        instance=instance,
    )
