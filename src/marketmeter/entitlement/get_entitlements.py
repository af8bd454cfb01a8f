"""GetEntitlements: the rules of docs/entitlement-service.md.

1. Filters (keys AND-ed, values of one key OR-ed): ``CUSTOMER_IDENTIFIER`` and
   ``CUSTOMER_AWS_ACCOUNT_ID`` together, or ``DIMENSION`` without either of them, are
   ``InvalidParameterException`` (AWS's message for the latter, boto/boto3#3520). No filter:
   every customer.
2. Strict auth: a seller reads only its own products; any other product code, known or not,
   is ``AccessDeniedException`` (a buyer's key is refused before, by ``protocol.auth``). Open
   auth: an unknown product has no entitlements.
3. Only products sold by contract (``contract``, ``contract-with-consumption``) have
   entitlements; one per dimension the agreement lists, while the agreement is subscribed and
   started at the service clock's now, and until its expiry (the entitlement's own date, else
   the agreement's end). An unsubscribed, unsubscribe-pending, suspended, expired or
   not-yet-started agreement entitles to nothing: its entitlements vanish, as AWS's do.
4. The answer is in a stable order (buyer account, LicenseArn, dimension), ``MaxResults``
   (default 25) at a time, with a ``NextToken`` while more remain (``entitlement.pages``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    CatalogSnapshot,
    Integration,
    Product,
)
from marketmeter.entitlement.pages import position_of, query_digest, token_for
from marketmeter.entitlement.types import (
    EntitlementFilter,
    EntitlementRecord,
    GetEntitlementsRequest,
    GetEntitlementsResult,
)
from marketmeter.errors import AccessDeniedException, InvalidParameterException
from marketmeter.metering.clock import Clock
from marketmeter.metering.types import Caller
from marketmeter.store.base import Store

__all__ = ["DEFAULT_MAX_RESULTS", "GetEntitlements", "check_filters", "entitlements_of"]

DEFAULT_MAX_RESULTS = 25
_CUSTOMER_KEYS = (EntitlementFilter.CUSTOMER_IDENTIFIER, EntitlementFilter.CUSTOMER_AWS_ACCOUNT_ID)


def check_filters(filters: Mapping[EntitlementFilter, tuple[str, ...]]) -> None:
    if all(key in filters for key in _CUSTOMER_KEYS):
        raise InvalidParameterException(
            "Invalid filter combination provided. CUSTOMER_IDENTIFIER and "
            "CUSTOMER_AWS_ACCOUNT_ID cannot be used together."
        )
    if EntitlementFilter.DIMENSION in filters and not any(k in filters for k in _CUSTOMER_KEYS):
        raise InvalidParameterException(
            "Invalid filter combination provided. Please provide the CUSTOMER_IDENTIFIER "
            "along with DIMENSION."
        )


def _entitles(agreement: Agreement, now: float) -> bool:
    return agreement.effective_state(now) is AgreementState.SUBSCRIBED and agreement.covers(now)


def entitlements_of(
    catalog: CatalogSnapshot, product: Product, now: float
) -> Iterator[EntitlementRecord]:
    """Every entitlement of ``product`` in force at ``now``, in no particular order."""
    if not product.pricing_model.has_entitlements:
        return
    legacy = product.integration is Integration.LEGACY
    for agreement in catalog.catalog.agreements:
        if agreement.product_code != product.product_code or not _entitles(agreement, now):
            continue
        buyer = catalog.buyers.get(agreement.buyer_account_id)
        identifier = buyer.customer_identifier if legacy and buyer is not None else None
        for entitlement in agreement.entitlements:
            expiration = agreement.expiration_of(entitlement)
            if expiration is not None and expiration <= now:
                continue
            yield EntitlementRecord(
                product_code=product.product_code,
                dimension=entitlement.dimension,
                customer_aws_account_id=agreement.buyer_account_id,
                license_arn=agreement.license_arn,
                value=entitlement.value,
                customer_identifier=identifier,
                expiration=expiration,
            )


def _matches(
    record: EntitlementRecord, filters: Mapping[EntitlementFilter, tuple[str, ...]]
) -> bool:
    fields = {
        EntitlementFilter.CUSTOMER_IDENTIFIER: record.customer_identifier,
        EntitlementFilter.CUSTOMER_AWS_ACCOUNT_ID: record.customer_aws_account_id,
        EntitlementFilter.DIMENSION: record.dimension,
        EntitlementFilter.LICENSE_ARN: record.license_arn,
    }
    return all(fields[key] in values for key, values in filters.items())


# A position before every entitlement's key (account, LicenseArn, dimension: none empty).
_BEFORE_ALL = ("", "", "")


class GetEntitlements:
    """The operation, wired to its store and the service clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def __call__(
        self, request: GetEntitlementsRequest, caller: Caller, empty_page: bool = False
    ) -> GetEntitlementsResult:
        """The page after the request's NextToken; with ``empty_page`` (a fault rule), a page
        of none whose NextToken resumes where this one would have begun (AWS: "an empty page
        may still carry a NextToken the client must follow")."""
        check_filters(request.filters)
        digest = query_digest(request.product_code, request.filters)
        after = position_of(request.next_token, digest) if request.next_token else None
        catalog = await self._store.catalog_snapshot()
        product = catalog.products.get(request.product_code)
        if caller.kind == "seller" and (
            product is None or product.seller_account_id != caller.account_id
        ):
            raise AccessDeniedException(
                f"User: arn:aws:iam::{caller.account_id}:root is not authorized to perform: "
                f"aws-marketplace:GetEntitlements on product {request.product_code}"
            )
        if empty_page:
            return GetEntitlementsResult((), request.next_token or token_for(_BEFORE_ALL, digest))
        if product is None:
            return GetEntitlementsResult(())
        now = self._clock.now().timestamp()
        found = sorted(
            (
                record
                for record in entitlements_of(catalog, product, now)
                if _matches(record, request.filters) and (after is None or record.order_key > after)
            ),
            key=lambda record: record.order_key,
        )
        limit = request.max_results or DEFAULT_MAX_RESULTS
        page = tuple(found[:limit])
        more = len(found) > limit
        return GetEntitlementsResult(page, token_for(page[-1].order_key, digest) if more else None)
