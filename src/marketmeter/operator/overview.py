"""The server at a glance, for the dashboard's overview: calls per operation and outcome,
errors by type and latency (over the calls the journal holds), the records billed per
dimension (the ledger's), the clock and the fault rules in force.

The call figures are those of the request journal of this server process: bounded (its
``stats`` say how many entries it holds and how many were dropped) and emptied by a reset.
"""

from __future__ import annotations

import math
from typing import Any

from marketmeter.operator.bench import BenchOperations
from marketmeter.operator.clock import ClockOperations
from marketmeter.operator.journal import MAX_LIMIT
from marketmeter.operator.usage_summary import UsageSummaries

__all__ = ["OverviewOperations", "outcome_of", "percentile"]


def outcome_of(entry: dict[str, Any]) -> str:
    """A call's outcome: ``OK``, or the error type it was answered with (its status if none)."""
    if entry["status"] < 400:
        return "OK"
    return str(entry["errorType"] or entry["status"])


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ascending ``sorted_values`` (not empty)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class OverviewOperations:
    """The overview of one server, from its journal, ledger, clock and bench."""

    def __init__(
        self, summaries: UsageSummaries, clock: ClockOperations, bench: BenchOperations
    ) -> None:
        self.summaries = summaries
        self.clock = clock
        self.bench = bench

    async def overview(self) -> dict[str, Any]:
        journal = self.bench.journal({"limit": str(MAX_LIMIT)})
        entries: list[dict[str, Any]] = journal["entries"]
        calls: dict[tuple[str, str], int] = {}
        errors: dict[str, int] = {}
        durations: dict[str, list[float]] = {}
        for entry in entries:
            operation = str(entry["operation"] or "(unparsed)")
            outcome = outcome_of(entry)
            calls[(operation, outcome)] = calls.get((operation, outcome), 0) + 1
            if outcome != "OK":
                errors[outcome] = errors.get(outcome, 0) + 1
            durations.setdefault(operation, []).append(entry["durationMs"])
        latency = []
        for operation, values in sorted(durations.items()):
            values.sort()
            latency.append(
                {
                    "operation": operation,
                    "calls": len(values),
                    "p50Ms": percentile(values, 0.5),
                    "p95Ms": percentile(values, 0.95),
                    "maxMs": values[-1],
                }
            )
        billed = await self.summaries.summary({"window": "month", "groupBy": "product"})
        return {
            "calls": [
                {"operation": operation, "outcome": outcome, "count": count}
                for (operation, outcome), count in sorted(calls.items())
            ],
            "errors": [
                {"errorType": name, "count": count} for name, count in sorted(errors.items())
            ],
            "latency": latency,
            "billed": billed["totals"],
            "clock": self.clock.state(),
            "faults": self.bench.rules(),
            "latencyMs": self.bench.effects()["latency"],
            "journal": journal["stats"],
        }
