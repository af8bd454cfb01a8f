"""Pagination of the Agreement API: ``maxResults`` (1..50, default 50) and an opaque
``nextToken`` bound to the request it continues.

A token is URL-safe base64 of JSON: a digest of the request's other parameters and the last
position served (an offset, or SearchAgreements' sort key). A token that does not decode, or
comes from another request, is ``ValidationException`` with reason ``INVALID_NEXT_TOKEN``
(docs/agreement-api.md, "Pagination").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from marketmeter.errors import AgreementValidationException

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "INVALID_NEXT_TOKEN",
    "binding_of",
    "next_token",
    "page_by_offset",
    "read_token",
]

DEFAULT_PAGE_SIZE = 50
INVALID_NEXT_TOKEN = "Provided nextToken is invalid"


def binding_of(*parts: Any) -> str:
    """A digest of the request's parameters that a token must be used with."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def next_token(binding: str, position: Any) -> str:
    raw = json.dumps({"b": binding, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def read_token(token: str | None, binding: str) -> Any:
    """The position a token continues from (``None`` without a token)."""
    if token is None or token == "":
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raw = None
    if not isinstance(raw, dict) or raw.get("b") != binding or "p" not in raw:
        raise AgreementValidationException(INVALID_NEXT_TOKEN, "INVALID_NEXT_TOKEN")
    return raw["p"]


def page_by_offset(
    items: list[Any], max_results: int | None, token: str | None, binding: str
) -> tuple[list[Any], str | None]:
    """One page of ``items`` by position; the token of the next, if any."""
    offset = read_token(token, binding)
    if offset is None:
        offset = 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= len(items):
        raise AgreementValidationException(INVALID_NEXT_TOKEN, "INVALID_NEXT_TOKEN")
    size = max_results or DEFAULT_PAGE_SIZE
    page = items[offset : offset + size]
    end = offset + len(page)
    return page, (next_token(binding, end) if end < len(items) else None)
