"""SaaS registration tokens (docs/saas-registration.md): their format, and minting them for an
agreement.

A token is 64 characters of URL-safe base64 from 48 random bytes (``secrets``): opaque and
unguessable, like the ``x-amzn-marketplace-token`` AWS posts to a registration URL. Anything
else is malformed. A token is bound to one agreement (buyer, product and LicenseArn) and is
minted when a SaaS agreement is created (catalog apply, ``marketmeter subscribe``) or on demand
(``marketmeter token mint``, ``POST /_marketmeter/tokens``). It expires a configured time after
it was issued, on the service clock (4 hours by default). Issue times are whole seconds.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Container, Iterable, Mapping
from datetime import timedelta
from typing import Protocol

from marketmeter.catalog.model import Agreement, Catalog, CatalogSnapshot, ProductKind
from marketmeter.config import DEFAULT_TOKEN_TTL
from marketmeter.metering.types import RegistrationToken
from marketmeter.refusal import Refusal

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "FREE_TRIAL",
    "TOKEN_FORMAT",
    "RandomTokens",
    "SequentialTokens",
    "TokenGenerator",
    "expires_at",
    "mint_token",
    "tokens_for_agreements",
    "tokens_for_new_agreements",
]

FREE_TRIAL = "free-trial"
TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_-]{64}")


class TokenGenerator(Protocol):
    def __call__(self) -> str:
        """A new token value matching ``TOKEN_FORMAT``."""
        ...


class RandomTokens:
    """Unguessable tokens: 48 bytes from ``secrets``."""

    def __call__(self) -> str:
        return secrets.token_urlsafe(48)


class SequentialTokens:
    """Predictable, well-formed tokens for tests: ``test-token-…0001``, ``…0002``, ..."""

    def __init__(self, prefix: str = "test-token-") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        number = str(next(self._counter))
        return self._prefix + number.rjust(64 - len(self._prefix), "0")


def expires_at(token: RegistrationToken, ttl: timedelta) -> float:
    """When ``token`` stops resolving (epoch seconds, service clock)."""
    return token.issued_at + ttl.total_seconds()


def _offer_type(agreement: Agreement, free_trial: bool | None) -> str | None:
    trial = agreement.free_trial if free_trial is None else free_trial
    return FREE_TRIAL if trial else None


def mint_token(
    catalog: CatalogSnapshot,
    product_code: str,
    buyer_account_id: str,
    issued_at: float,
    generate: TokenGenerator,
    license_arn: str | None = None,
    free_trial: bool | None = None,
) -> RegistrationToken:
    """A new token for the buyer's agreement to a SaaS product: the one ``license_arn`` names,
    else the buyer's active agreement (one that bills and covers ``issued_at``; the latest
    started if several). ``free_trial`` overrides the agreement's."""
    product = catalog.products.get(product_code)
    if product is None:
        raise Refusal("product", f"no product with product code {product_code!r}")
    if product.kind is not ProductKind.SAAS:
        raise Refusal(
            "product",
            f"{product_code} is not a SaaS product (kind: {product.kind}); "
            "registration tokens are for SaaS products",
        )
    if buyer_account_id not in catalog.buyers:
        raise Refusal("buyer", f"no buyer with account id {buyer_account_id!r}")
    agreements = list(catalog.agreements_of(buyer_account_id, product_code))
    if license_arn is not None:
        chosen = [a for a in agreements if a.license_arn == license_arn]
        if not chosen:
            raise Refusal(
                "licenseArn",
                f"{license_arn} is not an agreement of buyer {buyer_account_id} for {product_code}",
            )
        agreement = chosen[0]
    else:
        active = catalog.entitlement(buyer_account_id, product_code, issued_at)
        if active is None:
            raise Refusal(
                "buyer",
                f"buyer {buyer_account_id} has no active agreement for {product_code}; "
                f"subscribe first: marketmeter subscribe --product {product_code} "
                f"--buyer {buyer_account_id}",
            )
        agreement = active
    return RegistrationToken(
        value=generate(),
        product_code=product_code,
        buyer_account_id=buyer_account_id,
        license_arn=agreement.license_arn,
        issued_at=float(int(issued_at)),
        offer_type=_offer_type(agreement, free_trial),
    )


def tokens_for_new_agreements(
    current: CatalogSnapshot,
    incoming: Catalog,
    issued_at: float,
    generate: TokenGenerator,
) -> list[RegistrationToken]:
    """One token for each agreement of ``incoming`` that is new, active at ``issued_at`` (bills:
    subscribed or unsubscribe-pending; and covers that time) and is for a SaaS product."""
    kinds = {p.product_code: p.kind for p in current.catalog.products}
    kinds.update((p.product_code, p.kind) for p in incoming.products)
    return tokens_for_agreements(
        incoming.agreements, current.agreements_by_license, kinds, issued_at, generate
    )


def tokens_for_agreements(
    agreements: Iterable[Agreement],
    existing: Container[str],
    kinds: Mapping[str, ProductKind],
    issued_at: float,
    generate: TokenGenerator,
) -> list[RegistrationToken]:
    """``tokens_for_new_agreements`` for part of a catalog: one token for each of
    ``agreements`` whose LicenseArn ``existing`` does not hold, active at ``issued_at`` and for
    a product ``kinds`` says is SaaS."""
    new: Iterable[Agreement] = (
        a
        for a in agreements
        if a.license_arn not in existing
        and a.bills
        and a.covers(issued_at)
        and kinds.get(a.product_code) is ProductKind.SAAS
    )
    return [
        RegistrationToken(
            value=generate(),
            product_code=a.product_code,
            buyer_account_id=a.buyer_account_id,
            license_arn=a.license_arn,
            issued_at=float(int(issued_at)),
            offer_type=_offer_type(a, None),
        )
        for a in new
    ]
