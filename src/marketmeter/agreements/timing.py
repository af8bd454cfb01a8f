"""Times of the Agreement API: epoch seconds on the wire (AWS JSON, no timestamp format
override in the model), ISO-8601 durations (``P30D``, ``P12M``, ``P1Y``) added to a start."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

__all__ = ["add_duration", "days_between", "parse_filter_time", "wire_time"]

_DURATION = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?")


def wire_time(seconds: float) -> float | int:
    """Epoch seconds as the wire writes them: an integer when whole."""
    return int(seconds) if float(seconds).is_integer() else seconds


def days_between(start: float, end: float) -> int:
    return max(1, round((end - start) / 86400))


def add_duration(start: float, duration: str) -> float | None:
    """``start`` plus an ISO-8601 duration of years, months and days; ``None`` if it is not
    one, or if the sum lies past the year 9999."""
    match = _DURATION.fullmatch(duration)
    if match is None or not any(match.groups()):
        return None
    years, months, days = (int(part or 0) for part in match.groups())
    try:
        moment = datetime.fromtimestamp(start, UTC)
        month_index = moment.month - 1 + months + 12 * years
        year, month = moment.year + month_index // 12, month_index % 12 + 1
        day = min(moment.day, _days_in(year, month))
        moved = moment.replace(year=year, month=month, day=day) + timedelta(days=days)
    except (ValueError, OverflowError):  # beyond the year 9999: no date to show
        return None
    return moved.timestamp()


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return (following - timedelta(days=1)).day


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
