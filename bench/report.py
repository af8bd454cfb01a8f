"""The bench's results: one run's figures, the ledger check of its billed rows, and the
markdown tables (and JSON) they are reported in."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.wrk_report import RECORDS_PER_REQUEST, WrkReport

__all__ = [
    "DIMENSIONS",
    "LOAD_HOURS",
    "REFERENCES",
    "TABLE_HEADERS",
    "GrowthRow",
    "RunResult",
    "as_json",
    "check_billed",
    "format_growth_table",
    "format_table",
    "key_space",
    "ratio",
    "say",
    "summary",
]

# The load's key space (bench/batch_load.lua): buyers * DIMENSIONS * LOAD_HOURS.
DIMENSIONS = 10
LOAD_HOURS = 5  # bench/batch_load.lua bills the last 5 hours


@dataclass(frozen=True, slots=True)
class RunResult:
    contender: str
    connections: int
    ledger_rows: int = 0
    ready_seconds: float = 0.0
    wrk: WrkReport | None = None
    server_cpu_seconds: float = 0.0
    server_cpu_percent: float = 0.0
    database_cpu_seconds: float | None = None
    peak_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0  # sampled during the load: what the processes hold together
    wrk_cpu_seconds: float = 0.0
    error: str | None = None
    note: str | None = None
    records_per_request: int = RECORDS_PER_REQUEST

    @property
    def records_per_second(self) -> float:
        """Records billed per second (2xx answers only)."""
        return (
            0.0 if self.wrk is None else self.wrk.ok_requests_per_second * self.records_per_request
        )

    @property
    def failed(self) -> bool:
        return self.error is not None or self.wrk is None or self.wrk.errors > 0


def say(text: str) -> None:
    """Print one line of the report at once."""
    print(text, flush=True)


def check_billed(
    result: RunResult, billed: int | None, buyers: int, distinct_keys: bool = False
) -> RunResult:
    """The run, failed if its ledger holds fewer of the load's rows than its 2xx answers
    promised: ``records_per_request`` per answer, when no request of the run (those answered
    and the at most one per connection left in flight) repeated a key. Fewer means records
    refused rather than billed, e.g. buyers the catalog does not subscribe. Past the key space
    nothing is checked (``distinct_keys``: a load that never repeats a key has none)."""
    report = result.wrk
    if billed is None or report is None:
        return result
    if not distinct_keys and report.requests + result.connections > key_space(buyers):
        return result
    ok = report.requests - report.non_2xx
    expected = result.records_per_request * ok
    if billed >= expected:
        return result
    return dataclasses.replace(
        result,
        error=f"{billed:,} records billed for {ok:,} 2xx answers (at least {expected:,} expected)",
    )


def key_space(buyers: int) -> int:
    """Requests bench/batch_load.lua sends before it repeats a key."""
    return buyers // RECORDS_PER_REQUEST * DIMENSIONS * LOAD_HOURS


def summary(result: RunResult) -> str:
    """The line printed after a run."""
    if result.error is not None:
        return f"FAILED: {result.error}"
    assert result.wrk is not None
    text = (
        f"ready in {result.ready_seconds:.2f} s, {result.wrk.requests_per_second:,.0f} req/s, "
        f"p99 {_ms(result.wrk.p99_ms)} ms"
    )
    if result.wrk.errors:
        text += f"; FAILED: {result.wrk.describe_errors()}"
    if result.note:
        text += f"; note: {result.note}"
    return text


def ratio(value: float, reference: float | None) -> float | None:
    """``value / reference``, or None without a usable reference."""
    if reference is None or reference <= 0:
        return None
    return value / reference


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _per_cpu_second(requests: int, cpu_seconds: float) -> str:
    """Requests answered per second of the server's CPU: what a run shows of the server's cost
    when other processes share the cores (its req/s then measures its share of them too)."""
    return "–" if cpu_seconds <= 0 else f"{requests / cpu_seconds:,.0f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


TABLE_HEADERS = (
    "contender",
    "conns",
    "req/s",
    "records/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "server CPU s",
    "server CPU %",
    "req/CPU s",
    "db CPU s",
    "peak RSS MiB",
    "peak PSS MiB",
    "wrk CPU s",
    "ready s",
    "× moto fair",
    "× moto",
)

# The peers each run is compared with, at the same connection count: moto's server with its
# subscription lookup made a set (the fair one, the target's reference) and as shipped.
REFERENCES = ("moto-fair", "moto")


def format_table(results: Sequence[RunResult]) -> str:
    """One markdown row per run; the last two columns are its req/s over moto-fair's and
    moto's at the same connection count."""
    references = [
        {
            r.connections: r.wrk.requests_per_second
            for r in results
            if r.contender == name and r.wrk is not None and not r.failed
        }
        for name in REFERENCES
    ]
    rows = []
    for result in results:
        report = result.wrk
        if result.error is not None or report is None:
            rows.append(
                [result.contender, str(result.connections), "FAILED"]
                + ["–"] * (len(TABLE_HEADERS) - 3)
            )
            continue
        rate = report.requests_per_second
        rows.append(
            [
                result.contender + (" (errors)" if report.errors else ""),
                str(result.connections),
                f"{rate:,.0f}",
                f"{result.records_per_second:,.0f}",
                _ms(report.p50_ms),
                _ms(report.p99_ms),
                _ms(report.max_ms),
                f"{result.server_cpu_seconds:.2f}",
                f"{result.server_cpu_percent:.0f}",
                _per_cpu_second(report.requests, result.server_cpu_seconds),
                "–"
                if result.database_cpu_seconds is None
                else f"{result.database_cpu_seconds:.2f}",
                f"{result.peak_rss_mib:.0f}",
                f"{result.peak_pss_mib:.0f}",
                f"{result.wrk_cpu_seconds:.2f}",
                f"{result.ready_seconds:.2f}",
                *(_times(ratio(rate, peer.get(result.connections))) for peer in references),
            ]
        )
    return _markdown(TABLE_HEADERS, rows)


@dataclass(frozen=True, slots=True)
class GrowthRow:
    ledger_rows: int
    result: RunResult


def format_growth_table(rows: Sequence[GrowthRow]) -> str:
    """Throughput and p99 per ledger size, and their ratios to the empty ledger's."""
    empty = next((row.result.wrk for row in rows if row.ledger_rows == 0), None)
    lines = []
    for row in rows:
        report = row.result.wrk
        if row.result.error is not None or report is None:
            lines.append(
                [f"{row.ledger_rows:,}", str(row.result.connections), "FAILED"] + ["–"] * 4
            )
            continue
        lines.append(
            [
                f"{row.ledger_rows:,}" + (" (errors)" if report.errors else ""),
                str(row.result.connections),
                f"{report.requests_per_second:,.0f}",
                _ms(report.p99_ms),
                f"{row.result.ready_seconds:.2f}",
                _times(
                    ratio(report.requests_per_second, empty.requests_per_second if empty else None)
                ),
                _times(ratio(report.p99_ms, empty.p99_ms if empty else None)),
            ]
        )
    headers = ("ledger rows", "conns", "req/s", "p99 ms", "ready s", "req/s × empty", "p99 × empty")
    return _markdown(headers, lines)


def as_json(result: RunResult) -> dict[str, Any]:
    """A run's figures for ``--json``, with the 2xx-only rates."""
    data = dataclasses.asdict(result)
    if result.wrk is not None:
        data["requests_per_second_2xx"] = result.wrk.ok_requests_per_second
        data["records_per_second"] = result.records_per_second
    return data
