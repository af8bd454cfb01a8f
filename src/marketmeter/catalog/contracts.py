"""What a contract runs for and what it sells when its offer says nothing: an ISO-8601
duration (``P30D``, ``P12M``, ``P1Y``) added to a start, and the configurable upfront pricing
term marketmeter derives for a contract-priced product without an offer of its own (one rate
card of ``P12M`` pricing every dimension at ``0.00`` USD, any quantity of any of them).

A leaf: the Agreement API shows the derived term (``agreements.terms``) and a subscription
grants by it (``lifecycle.contract_grants``), so both read it here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DEFAULT_CONTRACT_DURATION", "DEFAULT_CURRENCY", "add_duration", "derived_upfront_term"]

DEFAULT_CURRENCY = "USD"
DEFAULT_CONTRACT_DURATION = "P12M"

_DURATION = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?")


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


def derived_upfront_term(dimensions: Sequence[str]) -> dict[str, Any]:
    """The ``configurableUpfrontPricingTerm`` (members as the Agreement API's model has them)
    of a contract-priced product's derived offer."""
    return {
        "currencyCode": DEFAULT_CURRENCY,
        "rateCards": [
            {
                "selector": {"type": "Duration", "value": DEFAULT_CONTRACT_DURATION},
                "constraints": {
                    "multipleDimensionSelection": "Allowed",
                    "quantityConfiguration": "Allowed",
                },
                "rateCard": [{"dimensionKey": d, "price": "0.00"} for d in dimensions],
            }
        ],
    }
