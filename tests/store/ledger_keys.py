"""Ledger keys for the store's billing tests: key ``n`` is one account per ``n`` in one hour,
dimension and product, billed under ``id-<n>-<quantity>`` unless told otherwise."""

from __future__ import annotations

from marketmeter.metering.types import LedgerEntry, LedgerOutcome, UsageRecord
from marketmeter.store.ledger_rows import LedgerRow, ledger_row

__all__ = ["BILLED", "HOUR", "entry", "outcome", "row"]

HOUR = 1795435200  # 2026-11-23T12:00:00Z

# the ledger's rows in the order they were written: account, id, quantity (micros)
BILLED = (
    "SELECT customer_account, metering_record_id, quantity_micros FROM usage_records ORDER BY seq"
)


def entry(n: int, quantity: int = 1, record_id: str | None = None) -> LedgerEntry:
    """Key ``n``, billed under ``record_id`` (``id-<n>-<quantity>``)."""
    return LedgerEntry(
        hour=HOUR,
        scope="product:p",
        customer_account=f"{n:012d}",
        dimension="users",
        quantity_micros=quantity * 1_000_000,
        metering_record_id=record_id or f"id-{n}-{quantity}",
        product_code="p",
        record=UsageRecord(timestamp=HOUR + 5.0, dimension="users", quantity=quantity),
        received_at=HOUR + 6.0,
    )


def row(n: int, quantity: int = 1, record_id: str | None = None) -> LedgerRow:
    """``entry``'s ledger row."""
    return ledger_row(entry(n, quantity, record_id))


def outcome(n: int, quantity: int = 1, inserted: bool = True) -> LedgerOutcome:
    """What the ledger answers for key ``n`` billed under ``id-<n>-<quantity>``."""
    return LedgerOutcome(f"id-{n}-{quantity}", quantity * 1_000_000, inserted)
