"""The usage chart, drawn on the server as inline SVG: one bar chart per dimension (never one
axis for two units), a bar per window summed over the other keys shown.

Only geometry lives here: the numbers are the summary's (``operator.usage_summary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["Bar", "Chart", "charts"]

WIDTH = 640
HEIGHT = 160
LEFT = 48
BOTTOM = 20


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the window's start
    value: str


@dataclass(frozen=True, slots=True)
class Chart:
    dimension: str
    top: str  # the largest value, written at the top of the axis
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def charts(summary: dict[str, Any]) -> list[Chart]:
    """A chart per dimension of ``summary``'s rows, windows in order."""
    per_dimension: dict[str, dict[str, Decimal]] = {}
    for row in summary["rows"]:
        windows = per_dimension.setdefault(row["dimension"], {})
        start = row["windowStart"]
        windows[start] = windows.get(start, Decimal(0)) + Decimal(str(row["quantity"]))
    made = []
    for dimension in sorted(per_dimension):
        windows = dict(sorted(per_dimension[dimension].items()))
        top = max(windows.values())
        scale = (HEIGHT - BOTTOM - 8) / float(top) if top > 0 else 0.0
        slot = (WIDTH - LEFT) / max(len(windows), 1)
        bars = []
        for index, (start, value) in enumerate(windows.items()):
            height = float(value) * scale
            bars.append(
                Bar(
                    x=round(LEFT + index * slot + slot * 0.1, 2),
                    y=round(HEIGHT - BOTTOM - height, 2),
                    width=round(slot * 0.8, 2),
                    height=round(height, 2),
                    label=start,
                    value=_plain(value),
                )
            )
        made.append(Chart(dimension=dimension, top=_plain(top), bars=bars))
    return made
