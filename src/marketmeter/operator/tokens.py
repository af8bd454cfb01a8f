"""The operator actions on SaaS registration tokens (list, mint on the service clock) and on
RegisterUsage signing keys (list, read one as PEM, rotate), with their JSON shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from marketmeter.metering.clock import Clock
from marketmeter.metering.registration_tokens import TokenGenerator, expires_at, mint_token
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.metering.types import RegistrationToken, SigningKey
from marketmeter.operator.inputs import check_known, iso, parse_count
from marketmeter.refusal import Refusal
from marketmeter.store.base import Store, TokenQuery

__all__ = ["KeyOperations", "TokenOperations", "key_json", "mint_request", "token_json"]


def token_json(token: RegistrationToken, ttl: timedelta, now: float) -> dict[str, Any]:
    expiry = expires_at(token, ttl)
    return {
        "token": token.value,
        "productCode": token.product_code,
        "customerAWSAccountId": token.buyer_account_id,
        "licenseArn": token.license_arn,
        "offerType": token.offer_type,
        "issuedAt": iso(token.issued_at),
        "expiresAt": iso(expiry),
        "expired": now >= expiry,
    }


def mint_request(body: Any) -> tuple[str, str, str | None, bool | None]:
    """``{"productCode", "buyerAccountId", "licenseArn"?, "freeTrial"?}`` checked."""
    if not isinstance(body, dict):
        raise Refusal("body", "must be a JSON object")
    known = {"productCode", "buyerAccountId", "licenseArn", "freeTrial"}
    for name in body:
        if name not in known:
            raise Refusal(name, f"unknown field; known: {', '.join(sorted(known))}")
    values: dict[str, str] = {}
    for name in ("productCode", "buyerAccountId"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise Refusal(name, "is required (a non-empty string)")
        values[name] = value
    license_arn = body.get("licenseArn")
    if license_arn is not None and not isinstance(license_arn, str):
        raise Refusal("licenseArn", "must be a string")
    free_trial = body.get("freeTrial")
    if free_trial is not None and not isinstance(free_trial, bool):
        raise Refusal("freeTrial", "must be true or false")
    return values["productCode"], values["buyerAccountId"], license_arn, free_trial


def key_json(key: SigningKey) -> dict[str, Any]:
    return {
        "version": key.version,
        "createdAt": iso(key.created_at),
        "retiredAt": iso(key.retired_at) if key.retired_at is not None else None,
        "publicKey": key.public_key_pem,
    }


# a token refusal's field as the admin API names it
_TOKEN_FIELDS = {"product": "productCode", "buyer": "buyerAccountId"}


class TokenOperations:
    """Registration tokens on ``store``, issued and judged on ``clock`` (the service clock)."""

    def __init__(
        self, store: Store, clock: Clock, generate: TokenGenerator, ttl: timedelta
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self._generate = generate

    async def list(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """Issued tokens, newest first: filters ``product``, ``buyer``, ``limit``."""
        check_known(filters, ("buyer", "limit", "product"), "filter")
        limit = parse_count("limit", filters.get("limit", "100"), 1, 10_000)
        query = TokenQuery(filters.get("product"), filters.get("buyer"), limit)
        now = self.clock.now().timestamp()
        found = await self.store.registration_tokens(query)
        return {"tokens": [token_json(t, self.ttl, now) for t in found]}

    async def mint(self, body: Any) -> dict[str, Any]:
        """``{"productCode", "buyerAccountId", "licenseArn"?, "freeTrial"?}``: a fresh token
        for one of the buyer's agreements, issued now."""
        product, buyer, license_arn, free_trial = mint_request(body)
        catalog = await self.store.catalog_snapshot()
        now = self.clock.now().timestamp()
        try:
            token = mint_token(
                catalog, product, buyer, now, self._generate, license_arn, free_trial
            )
        except Refusal as error:
            raise error.renamed(_TOKEN_FIELDS.get(error.field or "", error.field)) from None
        await self.store.issue_tokens([token])
        return token_json(token, self.ttl, now)


class KeyOperations:
    """The RegisterUsage key pairs of ``keys``."""

    def __init__(self, keys: KeyRing) -> None:
        self.ring = keys

    async def list(self) -> dict[str, Any]:
        return {"keys": [key_json(k) for k in await self.ring.keys()]}

    async def public_pem(self, version: str) -> str:
        """The public key of ``version`` (text, as a path or option gives it) as PEM."""
        readable = version.isascii() and version.isdigit() and len(version) < 10
        key = await self.ring.key(int(version)) if readable else None
        if key is None:
            raise Refusal.not_found("version", f"no public key version {version}")
        return key.public_key_pem

    async def rotate(self) -> dict[str, Any]:
        """A new version; the older ones retire now."""
        return key_json(await self.ring.rotate())
