"""BatchMeterUsage for the common batch, without per-record objects: the request path's lane.

The common batch: a ProductCode, and records that name a CustomerIdentifier, a dimension, an
integer epoch-second timestamp and an integer quantity (or none), without LicenseArn,
CustomerAWSAccountId, decimal quantities or allocations. Its records need none of the
whole-request checks that only other members can fail (docs/batch-meter-usage.md, checks 1, 5
and 6), so the rules here are ``metering.batch_meter_usage``'s, in its order, on flat values:

- the product, its dimensions and every timestamp's window are checked first; if any check
  fails, ``None`` is returned *before anything is drawn or written*, and the caller runs
  ``BatchMeterUsage`` itself, which raises the exact error;
- each record's verdict: ``CustomerNotSubscribed`` unless its buyer has an agreement that bills
  at the time of the call and covers the timestamp, else a ledger row (``store.base.LedgerRow``,
  ids drawn in request order, as ``BatchMeterUsage`` draws them);
- the ledger decides ``Success`` (new, or the same quantity again: the first id) or
  ``DuplicateRecord``.

The catalog is read as flat lookups built once per catalog version and product: a
CustomerIdentifier maps straight to its buyer account and agreements, with a flag for the usual
case of an agreement that always bills (subscribed, no start, no end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from marketmeter.catalog.model import Agreement, AgreementState, CatalogSnapshot, ProductKind
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.types import Caller, LedgerOutcome, RecordStatus
from marketmeter.metering.windows import UsageWindow
from marketmeter.store.base import LedgerRow

__all__ = ["BatchLedger", "SimpleBatch", "SimpleBatchResult"]

_MICROS = 1_000_000
_SUCCESS = RecordStatus.SUCCESS.value
_NOT_SUBSCRIBED = RecordStatus.CUSTOMER_NOT_SUBSCRIBED.value
_DUPLICATE = RecordStatus.DUPLICATE_RECORD.value

# A buyer of a product by CustomerIdentifier: account, agreements, whether one always bills.
_Subscriber = tuple[str, tuple[Agreement, ...], bool]


class BatchLedger(Protocol):
    """What the lane needs of the store (a ``store.base.Store``; in a worker of
    ``serve --workers``, its own catalog reads and the coordinator's writes)."""

    async def catalog_snapshot(self) -> CatalogSnapshot: ...

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None: ...


@dataclass(frozen=True, slots=True)
class SimpleBatchResult:
    """Each record's status and MeteringRecordId (None unless Success), in request order."""

    statuses: list[str]
    record_ids: list[str | None]


class SimpleBatch:
    """The lane's rules, wired to the same store, clock, ids and window as BatchMeterUsage."""

    def __init__(
        self, store: BatchLedger, clock: Clock, ids: IdGenerator, window: UsageWindow
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._window = window
        self._lookups_of: CatalogSnapshot | None = None
        self._lookups: dict[str, tuple[frozenset[str], dict[str, _Subscriber]]] = {}

    async def __call__(
        self,
        product_code: str,
        caller: Caller,
        timestamps: Sequence[int],
        dimensions: Sequence[str],
        customers: Sequence[str],
        quantities: Sequence[int],
    ) -> SimpleBatchResult | None:
        """The batch's verdicts, or None if a whole-request check fails (nothing done)."""
        catalog = await self._store.catalog_snapshot()
        now = self._clock.now()
        product = catalog.products.get(product_code)
        if product is None or product.kind is not ProductKind.SAAS:
            return None
        if caller.kind == "seller" and product.seller_account_id != caller.account_id:
            return None
        known, subscribers = self._lookups_for(catalog, product_code)
        if not known.issuperset(dimensions):
            return None
        accepts = self._window.admits(now)
        if not all(map(accepts, timestamps)):
            return None

        received_at = now.timestamp()
        scope = "product:" + product_code
        ids = self._ids
        rows: list[LedgerRow] = []
        statuses: list[str] = []
        for timestamp, dimension, customer, quantity in zip(
            timestamps, dimensions, customers, quantities, strict=True
        ):
            found = subscribers.get(customer)
            if found is None or not (
                found[2] or any(a.bills_at(received_at) and a.covers(timestamp) for a in found[1])
            ):
                statuses.append(_NOT_SUBSCRIBED)
                continue
            statuses.append(_SUCCESS)
            rows.append(
                (
                    timestamp // 3600 * 3600,
                    scope,
                    found[0],
                    dimension,
                    quantity * _MICROS,
                    ids(),
                    product_code,
                    None,
                    customer,
                    float(timestamp),
                    None,
                    received_at,
                    "BatchMeterUsage",
                    None,
                )
            )
        outcomes = await self._store.bill_rows(rows) if rows else None
        billed = iter(rows)
        record_ids: list[str | None] = []
        if outcomes is None:
            for status in statuses:
                record_ids.append(next(billed)[5] if status == _SUCCESS else None)
            return SimpleBatchResult(statuses, record_ids)
        held = iter(outcomes)
        for index, status in enumerate(statuses):
            if status != _SUCCESS:
                record_ids.append(None)
                continue
            row, outcome = next(billed), next(held)
            if outcome.inserted or outcome.quantity_micros == row[4]:
                record_ids.append(outcome.metering_record_id)
            else:
                statuses[index] = _DUPLICATE
                record_ids.append(None)
        return SimpleBatchResult(statuses, record_ids)

    def _lookups_for(
        self, catalog: CatalogSnapshot, product_code: str
    ) -> tuple[frozenset[str], dict[str, _Subscriber]]:
        """The product's dimensions and its buyers by CustomerIdentifier, for this catalog."""
        if self._lookups_of is not catalog:
            self._lookups_of = catalog
            self._lookups = {}
        found = self._lookups.get(product_code)
        if found is None:
            subscribers: dict[str, _Subscriber] = {}
            for customer, buyer in catalog.buyers_by_customer_identifier.items():
                agreements = tuple(catalog.agreements_of(buyer.account_id, product_code))
                if agreements:
                    always = any(_always_bills(a) for a in agreements)
                    subscribers[customer] = (buyer.account_id, agreements, always)
            found = (frozenset(catalog.products[product_code].dimensions), subscribers)
            self._lookups[product_code] = found
        return found


def _always_bills(agreement: Agreement) -> bool:
    """Subscribed without a start or an end: bills at any time, covers any timestamp."""
    return (
        agreement.state is AgreementState.SUBSCRIBED
        and agreement.starts_at is None
        and agreement.ends_at is None
    )
