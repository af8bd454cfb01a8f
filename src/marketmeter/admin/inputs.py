"""Reading admin input (query strings, JSON bodies, CLI options) and writing times back.

``Refusal`` names the field at fault; the admin API answers it with its status (400
unless said otherwise) and the CLI with a usage error. Times are read
as ISO 8601 or epoch seconds and written as ISO 8601 UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from marketmeter.refusal import Refusal

__all__ = [
    "NO_BODY",
    "iso",
    "json_body",
    "parse_count",
    "parse_duration",
    "parse_time",
]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def parse_time(field: str, text: str) -> float:
    """Epoch seconds from ISO 8601 (``2026-11-23T10:00:00Z``; no zone means UTC) or a number."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise Refusal(field, f"{text!r} is not a finite time")
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refusal(field, f"{text!r} is neither ISO 8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_count(field: str, text: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, written in ASCII digits."""
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise Refusal(field, f"must be a whole number from {low} to {high}")
    return int(text)


def parse_duration(field: str, text: str) -> float:
    """Seconds from ``90``, ``-30s``, ``15m``, ``6h`` or ``2d``."""
    unit = _UNITS.get(text[-1:].lower()) if text else None
    number = text[:-1] if unit is not None else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise Refusal(field, f"{text!r} is not a duration like 90, 15m, 6h or 2d") from None
    if not math.isfinite(seconds):
        raise Refusal(field, f"{text!r} is not a finite duration")
    return seconds


def iso(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
