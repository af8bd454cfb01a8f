"""The store contract: what the rules and the admin surface may ask of a backend.

The only store module the metering rules import. Backends (``store.sqlite``; PostgreSQL later)
implement ``Store``; the contract tests run against each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from marketmeter.catalog.model import Catalog, CatalogSnapshot
from marketmeter.metering.types import LedgerEntry, LedgerOutcome

__all__ = ["BilledRecord", "SchemaError", "Store", "UsageQuery"]


class SchemaError(Exception):
    """The database's schema is newer than this marketmeter, or otherwise unusable."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Filters for the billed-usage view. Times are epoch seconds on the usage timestamp."""

    product_code: str | None = None
    customer: str | None = None  # an AWS account id or a legacy CustomerIdentifier
    dimension: str | None = None
    start: float | None = None  # inclusive
    end: float | None = None  # exclusive
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class BilledRecord:
    """One row of the ledger, as the inspection views show it."""

    metering_record_id: str
    product_code: str
    customer_aws_account_id: str
    customer_identifier: str | None
    license_arn: str | None
    dimension: str
    quantity: Decimal
    usage_timestamp: float
    hour: int
    allocations: list[dict[str, object]] | None
    received_at: float


class Store(Protocol):
    async def catalog_snapshot(self) -> CatalogSnapshot:
        """The current catalog; cheap (cached, refreshed only when the catalog changed)."""
        ...

    async def bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerOutcome]:
        """Insert each entry unless its key is already billed; one durable transaction.

        Returns, in order, what the ledger holds for each entry's key afterwards. Nothing is
        returned before the transaction has committed.
        """
        ...

    async def usage(self, query: UsageQuery) -> list[BilledRecord]:
        """Billed records matching ``query``, oldest usage first."""
        ...

    async def apply_catalog(self, catalog: Catalog) -> int:
        """Upsert a whole catalog in one transaction; returns the new catalog version."""
        ...

    async def close(self) -> None:
        """Finish queued writes, then release the database."""
        ...
