"""BatchMeterUsage: the rules of docs/batch-meter-usage.md.

Order of the whole-request checks (each refuses the whole batch, nothing recorded):

1. every record names exactly one of CustomerIdentifier / CustomerAWSAccountId, at most one of
   Quantity / QuantityAsDecimal, and each allocation exactly one quantity form
   → ``ValidationException``;
2. the product: the request's ProductCode, or the product of the records' LicenseArns when it
   has none → ``InvalidProductCodeException`` / ``InvalidLicenseException``;
3. every dimension belongs to the product (case-sensitive) → ``InvalidUsageDimensionException``;
4. every timestamp lies in the window → ``TimestampOutOfBoundsException``;
5. allocations and tags → ``InvalidUsageAllocationsException`` / ``InvalidTagException``;
6. every LicenseArn belongs to the record's customer and covers its timestamp
   → ``InvalidLicenseException``.

Then each record gets its verdict in request order: ``CustomerNotSubscribed`` (not billed: no
agreement that bills at the time of the call, its state judged on the service clock, so an
unsubscribe-pending agreement stops billing the moment its delay is over), or
it goes to the ledger, whose unique key decides between ``Success`` (new, or an identical
retry: the first MeteringRecordId) and ``DuplicateRecord`` (same key, different quantity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marketmeter.catalog.model import (
    LICENSE_ARN_FORMAT,
    Agreement,
    Buyer,
    CatalogSnapshot,
    Product,
    ProductKind,
)
from marketmeter.errors import (
    InvalidLicenseException,
    InvalidProductCodeException,
    InvalidUsageDimensionException,
    TimestampOutOfBoundsException,
    ValidationException,
)
from marketmeter.metering.allocations import allocation_quantity_violations, check_allocations
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.ledger_entries import ledger_entry
from marketmeter.metering.types import (
    BatchMeterUsageRequest,
    BatchMeterUsageResult,
    Caller,
    LedgerEntry,
    RecordStatus,
    UsageRecord,
    UsageRecordResult,
)
from marketmeter.metering.windows import UsageWindow
from marketmeter.store.base import Store

__all__ = ["BatchMeterUsage"]


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A record's fate before the ledger: not subscribed, or an entry to bill."""

    entry: LedgerEntry | None


class BatchMeterUsage:
    """The operation, wired to its store, clock, id generator and time window."""

    def __init__(self, store: Store, clock: Clock, ids: IdGenerator, window: UsageWindow) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._window = window

    async def __call__(
        self,
        request: BatchMeterUsageRequest,
        caller: Caller,
        deferred: frozenset[int] = frozenset(),
    ) -> BatchMeterUsageResult:
        """Validate the whole batch, then bill every record but those at the ``deferred``
        positions, which come back as UnprocessedRecords, unbilled, for the client to send
        again (AWS does this when it cannot process them now; the test bench on demand)."""
        records = request.records
        if not records and request.product_code is None:
            return BatchMeterUsageResult(results=())  # nothing to meter, no product to judge
        _check_exclusive_members(records)
        catalog = await self._store.catalog_snapshot()
        now = self._clock.now()
        product = _resolve_product(request, catalog, caller)
        _check_dimensions(records, product)
        self._check_window(records, now)
        for record in records:
            if record.allocations is not None:
                check_allocations(
                    record.allocations,
                    record.billed_quantity,
                    decimal=record.quantity_decimal is not None,
                )
        _check_license_owners(records, catalog)

        received_at = now.timestamp()
        processed = [r for i, r in enumerate(records) if i not in deferred]
        verdicts = [self._verdict(record, product, catalog, received_at) for record in processed]
        entries = [verdict.entry for verdict in verdicts if verdict.entry is not None]
        outcomes = iter(await self._store.bill(entries) if entries else [])

        results: list[UsageRecordResult] = []
        for record, verdict in zip(processed, verdicts, strict=True):
            entry = verdict.entry
            if entry is None:
                results.append(UsageRecordResult(record, RecordStatus.CUSTOMER_NOT_SUBSCRIBED))
                continue
            outcome = next(outcomes)
            if outcome.inserted or outcome.quantity_micros == entry.quantity_micros:
                results.append(
                    UsageRecordResult(record, RecordStatus.SUCCESS, outcome.metering_record_id)
                )
            else:
                results.append(UsageRecordResult(record, RecordStatus.DUPLICATE_RECORD))
        unprocessed = tuple(r for i, r in enumerate(records) if i in deferred)
        return BatchMeterUsageResult(tuple(results), unprocessed)

    def _check_window(self, records: tuple[UsageRecord, ...], now: datetime) -> None:
        window = self._window
        accepts = window.admits(now)
        for index, record in enumerate(records, start=1):
            if not accepts(record.timestamp):
                raise TimestampOutOfBoundsException(
                    f"The timestamp of usageRecords.{index} ({record.timestamp}) is out of the "
                    f"allowed range: usage must be {window.describe()}."
                )

    def _verdict(
        self, record: UsageRecord, product: Product, catalog: CatalogSnapshot, received_at: float
    ) -> _Verdict:
        buyer = _buyer_of(record, catalog)
        if buyer is None:
            return _Verdict(None)
        if record.license_arn is not None:
            agreement = catalog.agreements_by_license[record.license_arn]
            if not agreement.bills_at(received_at):
                return _Verdict(None)
            scope = f"license:{record.license_arn}"
        else:
            if not any(
                agreement.bills_at(received_at) and agreement.covers(record.timestamp)
                for agreement in catalog.agreements_of(buyer.account_id, product.product_code)
            ):
                return _Verdict(None)
            scope = f"product:{product.product_code}"
        return _Verdict(
            ledger_entry(
                record,
                scope=scope,
                customer_account=buyer.account_id,
                product_code=product.product_code,
                metering_record_id=self._ids(),
                received_at=received_at,
            )
        )


def _check_exclusive_members(records: tuple[UsageRecord, ...]) -> None:
    """Members the model cannot mark as exclusive: one customer identity, one quantity form."""
    violations = []
    for index, record in enumerate(records, start=1):
        if record.quantity is not None and record.quantity_decimal is not None:
            violations.append(
                f"usageRecords.{index}.member has both quantity and quantityAsDecimal: "
                "at most one may be specified"
            )
        if record.allocations is not None:
            violations += allocation_quantity_violations(
                record.allocations, f"usageRecords.{index}.member.usageAllocations"
            )
        has_identifier = record.customer_identifier is not None
        has_account = record.customer_aws_account_id is not None
        if has_identifier == has_account:
            which = "both" if has_identifier else "neither"
            violations.append(
                f"usageRecords.{index}.member has {which} of customerIdentifier and "
                "customerAWSAccountId: exactly one must be specified"
            )
    if violations:
        raise ValidationException.from_violations(violations)


def _resolve_product(
    request: BatchMeterUsageRequest, catalog: CatalogSnapshot, caller: Caller
) -> Product:
    licenses: list[Agreement] = []
    for record in request.records:
        arn = record.license_arn
        if arn is None:
            continue
        if LICENSE_ARN_FORMAT.fullmatch(arn) is None:
            raise InvalidLicenseException(f"LicenseArn '{arn}' is not a valid license ARN.")
        agreement = catalog.agreements_by_license.get(arn)
        if agreement is None:
            raise InvalidLicenseException(f"LicenseArn '{arn}' does not exist.")
        licenses.append(agreement)

    code = request.product_code
    if code is None:
        if len(licenses) != len(request.records):
            raise InvalidProductCodeException(
                "A ProductCode is required unless every usage record carries a LicenseArn."
            )
        codes = sorted({agreement.product_code for agreement in licenses})
        if len(codes) > 1:
            raise InvalidLicenseException(
                "The LicenseArns of one request must all belong to one product; "
                f"found licenses of {', '.join(codes)}."
            )
        code = codes[0]

    product = catalog.products.get(code)
    if product is None or product.kind is not ProductKind.SAAS:
        raise InvalidProductCodeException(f"Product code '{code}' is not a valid SaaS product.")
    if caller.kind == "seller" and product.seller_account_id != caller.account_id:
        raise InvalidProductCodeException(f"Product code '{code}' is not a valid SaaS product.")
    for agreement in licenses:
        if agreement.product_code != code:
            raise InvalidLicenseException(
                f"LicenseArn '{agreement.license_arn}' does not belong to product '{code}'."
            )
    return product


def _check_dimensions(records: tuple[UsageRecord, ...], product: Product) -> None:
    for record in records:
        if record.dimension not in product.dimensions:
            raise InvalidUsageDimensionException(
                f"Dimension '{record.dimension}' is not a usage dimension of product "
                f"'{product.product_code}'."
            )


def _buyer_of(record: UsageRecord, catalog: CatalogSnapshot) -> Buyer | None:
    if record.customer_identifier is not None:
        return catalog.buyers_by_customer_identifier.get(record.customer_identifier)
    if record.customer_aws_account_id is not None:
        return catalog.buyers.get(record.customer_aws_account_id)
    return None


def _check_license_owners(records: tuple[UsageRecord, ...], catalog: CatalogSnapshot) -> None:
    for record in records:
        if record.license_arn is None:
            continue
        agreement = catalog.agreements_by_license[record.license_arn]
        if record.customer_aws_account_id is not None:
            customer_account: str | None = record.customer_aws_account_id
        else:
            buyer = _buyer_of(record, catalog)
            customer_account = buyer.account_id if buyer is not None else None
        if customer_account != agreement.buyer_account_id:
            raise InvalidLicenseException(
                f"LicenseArn '{record.license_arn}' does not belong to the record's customer."
            )
        if not agreement.covers(record.timestamp):
            raise InvalidLicenseException(
                f"LicenseArn '{record.license_arn}' is not active at the record's timestamp."
            )
