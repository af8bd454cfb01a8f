"""GetEntitlements' NextToken: the position after the last entitlement of a page, bound to
the query that made it.

A page is the entitlements whose stable key (buyer account, LicenseArn, dimension) comes after
the token's position, so the pages of one query neither repeat nor skip an entitlement that
exists throughout, however many are added or removed meanwhile (docs/entitlement-service.md).
The token also holds a digest of the query (product code and filters); a token used with
another query, or not one of ours, is ``InvalidParameterException``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

import orjson

from marketmeter.entitlement.types import EntitlementFilter
from marketmeter.errors import InvalidParameterException

__all__ = ["INVALID_TOKEN", "position_of", "query_digest", "token_for"]

INVALID_TOKEN = "The NextToken is invalid for this request."


def query_digest(product_code: str, filters: Mapping[EntitlementFilter, tuple[str, ...]]) -> str:
    """What a token is bound to: the product and the filters (their values as a set)."""
    canonical = [product_code, sorted((key.value, sorted(set(v))) for key, v in filters.items())]
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()[:16]


def token_for(position: tuple[str, str, str], digest: str) -> str:
    raw = orjson.dumps({"q": digest, "after": list(position)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def position_of(token: str, digest: str) -> tuple[str, str, str]:
    """The position a token holds, if it was made for this query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidParameterException(INVALID_TOKEN) from None
    if not isinstance(value, dict) or value.get("q") != digest:
        raise InvalidParameterException(INVALID_TOKEN)
    after = value.get("after")
    if (
        not isinstance(after, list)
        or len(after) != 3
        or not all(isinstance(part, str) for part in after)
    ):
        raise InvalidParameterException(INVALID_TOKEN)
    return (after[0], after[1], after[2])
