"""Reading an admin request's JSON body (the HTTP part of operator input; the rest is
``operator.inputs``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from marketmeter.refusal import Refusal

__all__ = ["NO_BODY", "json_body"]


class _NoBody:
    """The type of ``NO_BODY``."""

    def __repr__(self) -> str:
        return "NO_BODY"


# What ``json_body`` answers for a request without a body: unlike a JSON ``null`` body.
NO_BODY = _NoBody()


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON, or ``NO_BODY`` when it has none (only whitespace).
    The size bound is ``admin.text_guard``'s, the first reader of every admin body."""
    body = await request.body()
    if not body.strip():
        return NO_BODY
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refusal("body", "is not valid JSON") from None
