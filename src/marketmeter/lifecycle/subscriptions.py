"""Subscribing a buyer to a product, as AWS Marketplace does when a buyer accepts an offer.

``plan_subscription`` works out, from the catalog, what has to change: the buyer (created if
unknown; a legacy SaaS product gives it a CustomerIdentifier if it has none), the agreement (the
buyer's agreement that bills now is reused, else a new one starts at the beginning of the
current hour, so that usage of the hour the buyer subscribed in, stamped with the hour's start
as many sellers do, is billable) and, for a SaaS product, a fresh registration token. The
caller applies the returned catalog delta and token in one transaction
(``Store.apply_catalog``) and may then deliver the token (``registration.delivery``).
"""

from __future__ import annotations

import re

from marketmeter.catalog.model import (
    Agreement,
    Buyer,
    Catalog,
    CatalogSnapshot,
    Integration,
    ProductKind,
    customer_identifier_for,
    license_arn_for,
)
from marketmeter.lifecycle.types import Subscription
from marketmeter.metering.registration_tokens import FREE_TRIAL, TokenGenerator
from marketmeter.metering.types import RegistrationToken
from marketmeter.metering.windows import floor_to_hour
from marketmeter.refusal import Refusal

__all__ = ["plan_subscription"]

_ACCOUNT = re.compile(r"[0-9]{12}")


def plan_subscription(
    catalog: CatalogSnapshot,
    product_code: str,
    buyer_account_id: str,
    now: float,
    generate: TokenGenerator,
    free_trial: bool = False,
) -> Subscription:
    """What subscribing ``buyer_account_id`` to ``product_code`` at ``now`` changes.

    ``free_trial`` makes a new agreement a free trial; the token's offer type follows the
    agreement (a reused paid agreement stays paid)."""
    product = catalog.products.get(product_code)
    if product is None:
        raise Refusal("product", f"no product with product code {product_code!r}")
    if _ACCOUNT.fullmatch(buyer_account_id) is None:
        raise Refusal("buyer", f"{buyer_account_id!r} is not a 12-digit AWS account id")
    owners = {s.account_id for s in catalog.catalog.sellers}
    if buyer_account_id in owners:
        raise Refusal("buyer", f"{buyer_account_id} is a seller account")

    wants_identifier = (
        product.kind is ProductKind.SAAS and product.integration is Integration.LEGACY
    )
    existing = catalog.buyers.get(buyer_account_id)
    buyer = existing or Buyer(buyer_account_id)
    changed_buyer = existing is None
    if wants_identifier and buyer.customer_identifier is None:
        identifier = customer_identifier_for(buyer_account_id)
        if identifier in catalog.buyers_by_customer_identifier:
            raise Refusal("buyer", f"CustomerIdentifier {identifier} is taken")
        buyer = Buyer(buyer.account_id, identifier, buyer.name, buyer.access_keys)
        changed_buyer = True

    agreement = catalog.entitlement(buyer_account_id, product_code, now)
    created_agreement = agreement is None
    if agreement is None:
        agreement = Agreement(
            license_arn=license_arn_for(buyer_account_id, product_code, repr(now)),
            buyer_account_id=buyer_account_id,
            product_code=product_code,
            starts_at=float(floor_to_hour(now)),
            free_trial=free_trial,
        )
    token = None
    if product.kind is ProductKind.SAAS:
        token = RegistrationToken(
            value=generate(),
            product_code=product_code,
            buyer_account_id=buyer_account_id,
            license_arn=agreement.license_arn,
            issued_at=float(int(now)),
            offer_type=FREE_TRIAL if agreement.free_trial else None,
        )
    changes = Catalog(
        buyers=(buyer,) if changed_buyer else (),
        agreements=(agreement,) if created_agreement else (),
    )
    return Subscription(
        buyer=buyer,
        agreement=agreement,
        token=token,
        created_buyer=existing is None,
        created_agreement=created_agreement,
        changes=changes,
    )
