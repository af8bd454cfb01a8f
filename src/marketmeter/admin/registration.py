"""Registration tokens and signing keys through the admin API and the CLI: JSON and text shapes.

Shared by ``/_marketmeter/tokens``, ``/_marketmeter/keys`` and ``marketmeter token|keys``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from marketmeter.admin.inputs import iso
from marketmeter.metering.registration_tokens import expires_at
from marketmeter.metering.types import RegistrationToken, SigningKey
from marketmeter.refusal import Refusal

__all__ = ["key_json", "mint_request", "token_json", "tokens_table"]


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


def tokens_table(tokens: Sequence[RegistrationToken], ttl: timedelta, now: float) -> str:
    header = ("TOKEN", "PRODUCT", "BUYER", "OFFER", "EXPIRES (UTC)", "STATE")
    rows = [
        (
            t.value,
            t.product_code,
            t.buyer_account_id,
            t.offer_type or "-",
            iso(expires_at(t, ttl)),
            "expired" if now >= expires_at(t, ttl) else "valid",
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.append(f"{len(tokens)} token(s)")
    return "\n".join(lines)


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
