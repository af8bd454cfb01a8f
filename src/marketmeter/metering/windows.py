"""Which usage timestamps the service accepts, and the hour a timestamp falls in
(docs/batch-meter-usage.md).

Two policies:

- ``6h`` (default, the seed documents' rule): a record is accepted only if its timestamp is
  less than 6 hours in the past.
- ``24h-month-end`` (AWS's current rule): less than 24 hours in the past, and a record for the
  previous calendar month only until 06:00 UTC on the 1st.

Both refuse timestamps more than ``future_skew`` ahead of the clock (AWS leaves this
undocumented; 5 minutes by default). Timestamps are epoch seconds, possibly fractional, possibly
absurd (``1e300``): everything is computed on floats so no input can overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = ["UsageWindow", "WindowPolicy", "floor_to_hour"]

_HOUR = 3600


class WindowPolicy(StrEnum):
    SIX_HOURS = "6h"
    AWS_24H_MONTH_END = "24h-month-end"


def floor_to_hour(timestamp: float) -> int:
    """The start of the UTC hour a timestamp falls in, in epoch seconds."""
    return int(timestamp // _HOUR) * _HOUR


def _start_of_month(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class UsageWindow:
    policy: WindowPolicy = WindowPolicy.SIX_HOURS
    future_skew: timedelta = timedelta(minutes=5)
    month_end_grace: timedelta = timedelta(hours=6)
    age: timedelta | None = None  # overrides the policy's maximum age (MeterUsage's setting)

    @property
    def max_age(self) -> timedelta:
        if self.age is not None:
            return self.age
        return timedelta(hours=6 if self.policy is WindowPolicy.SIX_HOURS else 24)

    def accepts(self, timestamp: float, now: datetime) -> bool:
        """True if a record stamped ``timestamp`` may be metered at ``now``."""
        return self.admits(now)(timestamp)

    def admits(self, now: datetime) -> Callable[[float], bool]:
        """``accepts`` at ``now`` as a test of timestamps, its bounds computed once (a batch
        checks up to 25 timestamps against one ``now``)."""
        current = now.timestamp()
        latest = current + self.future_skew.total_seconds()
        max_age = self.max_age.total_seconds()
        if self.policy is WindowPolicy.AWS_24H_MONTH_END:
            month_start = _start_of_month(now)
            previous_month_open = now < month_start + self.month_end_grace
            month_start_epoch = month_start.timestamp()

            def month_end_test(timestamp: float) -> bool:
                if timestamp > latest or current - timestamp >= max_age:
                    return False
                return timestamp >= month_start_epoch or previous_month_open

            return month_end_test

        def test(timestamp: float) -> bool:
            return timestamp <= latest and current - timestamp < max_age

        return test

    def describe(self) -> str:
        """How the window reads in an error message."""
        text = f"less than {_span(self.max_age)} in the past"
        if self.policy is WindowPolicy.AWS_24H_MONTH_END:
            text += " (previous month only until 06:00 UTC on the 1st)"
        return f"{text} and no more than {_span(self.future_skew)} in the future"


def _span(delta: timedelta) -> str:
    """``6 hours``, ``1 hour``, ``5 minutes``, ``90 seconds``: the largest whole unit."""
    seconds = int(delta.total_seconds())
    for unit, size in (("hour", _HOUR), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    raise AssertionError("unreachable")
