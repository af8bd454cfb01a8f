"""Times of the Agreement API: epoch seconds on the wire (AWS JSON, no timestamp format
override in the model), ISO-8601 durations (``P30D``, ``P12M``, ``P1Y``) added to a start
(``catalog.contracts.add_duration``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from marketmeter.catalog.contracts import add_duration

__all__ = ["add_duration", "days_between", "parse_filter_time", "wire_time"]


def wire_time(seconds: float) -> float | int:
    """Epoch seconds as the wire writes them: an integer when whole."""
    return int(seconds) if float(seconds).is_integer() else seconds


def days_between(start: float, end: float) -> int:
    return max(1, round((end - start) / 86400))


def parse_filter_time(value: str) -> float | None:
    """A SearchAgreements time filter's value: ISO-8601 (``2024-01-01T00:00:00Z``, a date
    alone) or epoch seconds; ``None`` if it is neither."""
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
