"""Reading operator input (query strings, JSON bodies, command-line options) and writing
times back, the same for every front end.

A ``Refusal`` names the field at fault. Times are read as ISO 8601 or epoch seconds and
written as ISO 8601 UTC; durations as ``90``, ``-30s``, ``15m``, ``6h`` or ``2d``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from marketmeter.refusal import Refusal

__all__ = [
    "check_known",
    "iso",
    "json_object",
    "parse_count",
    "parse_duration",
    "parse_time",
    "strict_object",
]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# The times an operator can name: from year 1 to year 9999 (what ``datetime`` holds), in epoch
# seconds; a number beyond is refused, never carried to a date conversion or to SQL.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def json_object(body: Any) -> dict[str, Any]:
    """``body`` (a parsed JSON body; None: none, or ``null``) as an object, ``{}`` for None."""
    if body is None:
        return {}
    return strict_object(body)


def strict_object(body: Any) -> dict[str, Any]:
    """``body``, which must be a JSON object (``null`` is not one)."""
    if not isinstance(body, dict):
        raise Refusal("body", "must be a JSON object")
    return body


def check_known(given: Mapping[str, Any], known: Collection[str], what: str = "field") -> None:
    """Refuse the first name of ``given`` that is not in ``known`` (listed in its order)."""
    for name in given:
        if name not in known:
            listed = known if isinstance(known, tuple | list) else sorted(known)
            raise Refusal(name, f"unknown {what}; known: {', '.join(listed)}")


def parse_time(field: str, text: str) -> float:
    """Epoch seconds from ISO 8601 (``2026-11-23T10:00:00Z``; no zone means UTC) or a number."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise Refusal(field, f"{_shown(text)} is not a finite time")
        if not EARLIEST <= number <= LATEST:
            raise Refusal(field, f"{_shown(text)} is out of range (years 1 to 9999)")
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refusal(field, f"{_shown(text)} is neither ISO 8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = moment.timestamp()
    if not EARLIEST <= epoch <= LATEST:  # a zone's offset took it past year 1 or 9999
        raise Refusal(field, f"{_shown(text)} is out of range (years 1 to 9999)")
    return epoch


def parse_count(field: str, text: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, written in ASCII digits."""
    digits = text.lstrip("0") or "0"
    if (
        not (text.isascii() and text.isdigit())
        or len(digits) > len(str(high))  # never int() of thousands of digits
        or not low <= int(digits) <= high
    ):
        raise Refusal(field, f"must be a whole number from {low} to {high}")
    return int(digits)


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


def _shown(text: str, most: int = 40) -> str:
    """``text`` quoted for a message, cut at ``most`` characters."""
    return repr(text) if len(text) <= most else repr(text[:most]) + "…"


def iso(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
