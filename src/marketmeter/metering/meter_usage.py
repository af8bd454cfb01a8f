"""MeterUsage: the rules of docs/meter-usage.md (AMI and container products, called by the buyer's
side).

Checks, in order (each refuses the call, nothing recorded):

1. at most one of UsageQuantity / UsageQuantityAsDecimal, each allocation exactly one quantity
   form → ``ValidationException``;
2. the product exists and is an AMI or container product → ``InvalidProductCodeException``;
3. the dimension belongs to it (case-sensitive) → ``InvalidUsageDimensionException``;
4. the timestamp lies in the window (less than 6 hours in the past by default)
   → ``TimestampOutOfBoundsException``;
5. allocations and tags, shared with BatchMeterUsage → ``InvalidUsageAllocationsException`` /
   ``InvalidTagException``;
6. the credentials are a buyer's (``metering.callers``) with an agreement that bills and covers
   the timestamp → ``CustomerNotEntitledException``;
7. a per-request product needs a ClientToken → ``ValidationException``.

Then the ledger decides:

- **hourly** (default): one record per (product, instance, dimension, hour). The same quantity
  again returns the first MeteringRecordId; another quantity → ``DuplicateRequestException``.
- **per request** (products with ``per_request_metering``, AWS's AgentCore mode): every new
  ClientToken of the buyer account bills; the same token with the same parameters returns the
  first MeteringRecordId; with other parameters → ``IdempotencyConflictException`` (409).

``DryRun`` runs every check, including the ledger's (read only), records nothing and does not
use up the hour. Where the call would have succeeded it answers as AWS does, HTTP 200 with
``MeteringRecordId`` ``"DryRunOperation"`` (``DryRunAnswer.SUCCESS``: CloudQuery's client,
cloudquery/plugin-sdk #1966, and AWS's sample aws-samples/aws-marketplace-metered-container-product
rely on it); ``DryRunAnswer.ERROR`` answers the ``DryRunOperation`` error instead, as the API
reference's wording ("returns DryRunOperation") reads. Where it would fail, the real call's error.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from marketmeter.catalog.model import CatalogSnapshot, Product, ProductKind
from marketmeter.config import DryRunAnswer
from marketmeter.errors import (
    CustomerNotEntitledException,
    DryRunOperation,
    DuplicateRequestException,
    IdempotencyConflictException,
    InvalidProductCodeException,
    InvalidUsageDimensionException,
    TimestampOutOfBoundsException,
    ValidationException,
)
from marketmeter.metering.allocations import allocation_quantity_violations, check_allocations
from marketmeter.metering.callers import buyer_instance
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.ledger_entries import ledger_entry
from marketmeter.metering.quantities import to_micros
from marketmeter.metering.types import (
    Caller,
    LedgerEntry,
    MeterUsageRequest,
    MeterUsageResult,
    RequestClaim,
    UsageRecord,
)
from marketmeter.metering.windows import UsageWindow
from marketmeter.store.base import Store

__all__ = ["DRY_RUN_MESSAGE", "DRY_RUN_RECORD_ID", "MeterUsage", "stored_client_token"]

# ClientToken is 1 to 64 characters of any kind (botocore's model: no pattern), NUL included,
# and PostgreSQL's text cannot hold U+0000. A token with a NUL is kept as this marker (longer
# than any ClientToken, so never one) and the hex of its UTF-8 bytes: one token, one stored
# value, on both backends; every token without a NUL is kept as it is.
_NUL_TOKEN_MARKER = "~" * 65 + "nul-hex:"


def stored_client_token(token: str) -> str:
    """How ``token`` is kept in the ledger (claims and per-request scopes): as it is, unless it
    holds a NUL (see ``_NUL_TOKEN_MARKER``)."""
    if "\x00" not in token:
        return token
    return _NUL_TOKEN_MARKER + token.encode("utf-8", "surrogatepass").hex()


DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."
# The MeteringRecordId of a dry run that would succeed (cloudquery/plugin-sdk #1966's double).
DRY_RUN_RECORD_ID = "DryRunOperation"


_METERED_KINDS = (ProductKind.AMI, ProductKind.CONTAINER)


class MeterUsage:
    """The operation, wired to its store, clock, id generator and time window."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        window: UsageWindow,
        dry_run_answer: DryRunAnswer = DryRunAnswer.SUCCESS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._window = window
        self._dry_run_answer = dry_run_answer

    async def __call__(self, request: MeterUsageRequest, caller: Caller) -> MeterUsageResult:
        _check_exclusive_members(request)
        catalog = await self._store.catalog_snapshot()
        now = self._clock.now()
        product = _metered_product(request.product_code, catalog)
        if request.dimension not in product.dimensions:
            raise InvalidUsageDimensionException(
                f"Dimension '{request.dimension}' is not a usage dimension of product "
                f"'{product.product_code}'."
            )
        self._check_window(request, now)
        if request.allocations is not None:
            check_allocations(
                request.allocations,
                request.billed_quantity,
                decimal=request.quantity_decimal is not None,
            )
        caller_id = buyer_instance(caller, catalog, "MeterUsage")
        buyer = caller_id.buyer
        agreement = catalog.entitlement(
            buyer.account_id, product.product_code, request.timestamp, now.timestamp()
        )
        if agreement is None:
            raise CustomerNotEntitledException(
                f"Customer {buyer.account_id} is not entitled to product "
                f"'{product.product_code}' at the usage timestamp ({request.timestamp})."
            )
        if product.per_request_metering and request.client_token is None:
            raise ValidationException.from_violations(
                [
                    f"Product '{product.product_code}' is metered per request: "
                    "a clientToken is required"
                ]
            )

        record = UsageRecord(
            timestamp=request.timestamp,
            dimension=request.dimension,
            quantity=request.quantity,
            quantity_decimal=request.quantity_decimal,
            customer_identifier=buyer.customer_identifier,
            customer_aws_account_id=buyer.account_id,
            license_arn=agreement.license_arn,
            allocations=request.allocations,
        )
        token = None if request.client_token is None else stored_client_token(request.client_token)
        if product.per_request_metering and token is not None:
            scope = f"request:{product.product_code}|{token}"
        else:
            scope = f"instance:{product.product_code}|{caller_id.instance}"
        entry = ledger_entry(
            record,
            scope=scope,
            customer_account=buyer.account_id,
            product_code=product.product_code,
            metering_record_id=self._ids(),
            received_at=now.timestamp(),
            operation="MeterUsage",
            instance=caller_id.instance,
        )
        if product.per_request_metering and token is not None:
            claim = RequestClaim(
                customer_account=buyer.account_id,
                client_token=token,
                fingerprint=_fingerprint(request),
                metering_record_id=entry.metering_record_id,
                created_at=entry.received_at,
            )
            return await self._bill_per_request(request, claim, entry)
        return await self._bill_hourly(request, entry, product)

    async def _bill_per_request(
        self, request: MeterUsageRequest, claim: RequestClaim, entry: LedgerEntry
    ) -> MeterUsageResult:
        if request.dry_run:
            found = await self._store.claim(claim.customer_account, claim.client_token)
            if found is not None and found.fingerprint != claim.fingerprint:
                raise _conflict(request)
            return self._dry_run_succeeds()
        outcome = await self._store.bill_claim(claim, entry)
        if not outcome.inserted and outcome.fingerprint != claim.fingerprint:
            raise _conflict(request)
        return MeterUsageResult(outcome.metering_record_id)

    async def _bill_hourly(
        self, request: MeterUsageRequest, entry: LedgerEntry, product: Product
    ) -> MeterUsageResult:
        if request.dry_run:
            found = await self._store.billed(entry)
            if found is not None and found.quantity_micros != entry.quantity_micros:
                raise _duplicate(entry, product)
            return self._dry_run_succeeds()
        [outcome] = await self._store.bill([entry])
        if not outcome.inserted and outcome.quantity_micros != entry.quantity_micros:
            raise _duplicate(entry, product)
        return MeterUsageResult(outcome.metering_record_id)

    def _dry_run_succeeds(self) -> MeterUsageResult:
        """The answer to a dry run that passed every check (nothing was recorded)."""
        if self._dry_run_answer is DryRunAnswer.ERROR:
            raise DryRunOperation(DRY_RUN_MESSAGE)
        return MeterUsageResult(DRY_RUN_RECORD_ID)

    def _check_window(self, request: MeterUsageRequest, now: datetime) -> None:
        if not self._window.accepts(request.timestamp, now):
            raise TimestampOutOfBoundsException(
                f"The timestamp ({request.timestamp}) is out of the allowed range: usage must "
                f"be {self._window.describe()}."
            )


def _check_exclusive_members(request: MeterUsageRequest) -> None:
    violations = []
    if request.quantity is not None and request.quantity_decimal is not None:
        violations.append(
            "The request has both usageQuantity and usageQuantityAsDecimal: "
            "at most one may be specified"
        )
    if request.allocations is not None:
        violations += allocation_quantity_violations(request.allocations, "usageAllocations")
    if violations:
        raise ValidationException.from_violations(violations)


def _metered_product(code: str, catalog: CatalogSnapshot) -> Product:
    product = catalog.products.get(code)
    if product is None or product.kind not in _METERED_KINDS:
        raise InvalidProductCodeException(
            f"Product code '{code}' is not a valid AMI or container product."
        )
    return product


def _fingerprint(request: MeterUsageRequest) -> str:
    """The parameters a ClientToken is bound to, compared by value (17 == 17.0 == "17.00")."""
    allocations = [
        (
            str(to_micros(allocation.amount)),
            sorted((tag.key, tag.value) for tag in allocation.tags or ()),
        )
        for allocation in request.allocations or ()
    ]
    canonical = repr(
        (
            request.product_code,
            request.dimension,
            str(Decimal(str(request.timestamp)).normalize()),
            to_micros(request.billed_quantity),
            allocations if request.allocations is not None else None,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _duplicate(entry: LedgerEntry, product: Product) -> DuplicateRequestException:
    hour = datetime.fromtimestamp(entry.hour, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return DuplicateRequestException(
        f"A metering record for product '{product.product_code}', dimension "
        f"'{entry.dimension}' and the hour starting {hour} was already sent from this "
        "instance with a different quantity."
    )


def _conflict(request: MeterUsageRequest) -> IdempotencyConflictException:
    return IdempotencyConflictException(
        f"ClientToken '{request.client_token}' was already used with different parameters."
    )
