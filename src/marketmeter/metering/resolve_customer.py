"""ResolveCustomer: the rules of docs/saas-registration.md (SaaS registration).

1. A token that is not of marketmeter's format, or was never issued, or (strict auth) belongs
   to another seller's product → ``InvalidTokenException``.
2. A token issued ``token_ttl`` or longer ago on the service clock → ``ExpiredTokenException``.
3. Otherwise the same token resolves to the same answer, as often as it is asked until it
   expires (AWS's documented behaviour; ``--token-reuse reusable``, the default): ProductCode,
   CustomerAWSAccountId, LicenseArn and the agreement id; CustomerIdentifier only for products
   of the legacy integration. With ``--token-reuse single-use``, a token resolved before →
   ``ExpiredTokenException`` (AWS lists "a token the buyer submitted again" among its causes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketmeter.catalog.model import Integration, agreement_id_for
from marketmeter.config import TokenReuse
from marketmeter.errors import ExpiredTokenException, InvalidTokenException
from marketmeter.metering.clock import Clock
from marketmeter.metering.registration_tokens import TOKEN_FORMAT, expires_at
from marketmeter.metering.types import Caller, ResolveCustomerRequest, ResolveCustomerResult
from marketmeter.store.base import Store

__all__ = ["ResolveCustomer"]

_INVALID = "The registration token is invalid."


class ResolveCustomer:
    """The operation, wired to its store, clock and token lifetime."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        token_ttl: timedelta,
        reuse: TokenReuse = TokenReuse.REUSABLE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl = token_ttl
        self._reuse = reuse

    async def __call__(
        self, request: ResolveCustomerRequest, caller: Caller
    ) -> ResolveCustomerResult:
        value = request.registration_token
        if TOKEN_FORMAT.fullmatch(value) is None:
            raise InvalidTokenException(_INVALID)
        token = await self._store.registration_token(value)
        if token is None:
            raise InvalidTokenException(_INVALID)
        catalog = await self._store.catalog_snapshot()
        product = catalog.products.get(token.product_code)
        if product is None or (
            caller.kind == "seller" and product.seller_account_id != caller.account_id
        ):
            raise InvalidTokenException(_INVALID)
        expiry = expires_at(token, self._ttl)
        now = self._clock.now().timestamp()
        if now >= expiry:
            moment = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise ExpiredTokenException(f"The registration token expired at {moment}.")
        if self._reuse is TokenReuse.SINGLE_USE and not (
            await self._store.claim_first_resolution(value, now)
        ):
            raise ExpiredTokenException("The registration token has already been used.")
        buyer = catalog.buyers.get(token.buyer_account_id)
        legacy = product.integration is Integration.LEGACY
        return ResolveCustomerResult(
            product_code=token.product_code,
            customer_aws_account_id=token.buyer_account_id,
            license_arn=token.license_arn,
            agreement_id=agreement_id_for(token.license_arn),
            customer_identifier=buyer.customer_identifier if legacy and buyer else None,
        )
