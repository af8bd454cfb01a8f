"""wrk's report, parsed: requests, rate, latency percentiles, non-2xx answers and socket errors
of one ``wrk --latency`` run of ``bench/batch_load.lua``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RECORDS_PER_REQUEST", "SocketErrors", "WrkReport", "parse_wrk", "time_ms"]

RECORDS_PER_REQUEST = 25  # bench/batch_load.lua's batch size

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = re.compile(r"([\d.]+)(us|ms|s|m|h)")
_LATENCY = re.compile(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+%$", re.MULTILINE)
# wrk pads a percentile past a second with a trailing space ("99%    1.99s ")
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s+(\d+) requests in (\S+), ", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)$", re.MULTILINE)


def time_ms(text: str) -> float:
    """A wrk duration (``463.00us``, ``6.16ms``, ``2.00s``, ``1.00m``) in milliseconds."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS_MS[match[2]]


@dataclass(frozen=True, slots=True)
class SocketErrors:
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.timeout


@dataclass(frozen=True, slots=True)
class WrkReport:
    """What one wrk run measured (times in milliseconds)."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: SocketErrors

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors.total

    @property
    def ok_requests_per_second(self) -> float:
        """Requests/s counting 2xx answers only."""
        if self.requests == 0:
            return 0.0
        return self.requests_per_second * (self.requests - self.non_2xx) / self.requests

    @property
    def records_per_second(self) -> float:
        return RECORDS_PER_REQUEST * self.ok_requests_per_second

    def describe_errors(self) -> str:
        parts = []
        if self.non_2xx:
            parts.append(f"{self.non_2xx} non-2xx answers")
        errors = self.socket_errors
        if errors.total:
            parts.append(
                f"socket errors: connect {errors.connect}, read {errors.read}, "
                f"write {errors.write}, timeout {errors.timeout}"
            )
        return "; ".join(parts)


def parse_wrk(output: str) -> WrkReport:
    """wrk's report (run with ``--latency``); ``ValueError`` if a figure is missing."""
    latency = _LATENCY.search(output)
    requests = _REQUESTS.search(output)
    rate = _RATE.search(output)
    percentiles = {int(m[1]): time_ms(m[2]) for m in _PERCENTILE.finditer(output)}
    if latency is None or requests is None or rate is None or len(percentiles) != 4:
        raise ValueError(f"not a wrk --latency report:\n{output}")
    socket_errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkReport(
        requests=int(requests[1]),
        seconds=time_ms(requests[2]) / 1000,
        requests_per_second=float(rate[1]),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        max_ms=time_ms(latency[3]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=SocketErrors(*(int(n) for n in socket_errors.groups()))
        if socket_errors
        else SocketErrors(),
    )
