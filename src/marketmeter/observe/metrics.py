"""The server's Prometheus metrics (``GET /metrics``, Prometheus's text format), with
prometheus-client.

- ``marketmeter_calls_total{operation, outcome, error_type}``: every call the AWS endpoint
  answered; ``outcome`` is ``success`` (2xx), ``client_error`` (4xx) or ``server_error``
  (5xx), ``error_type`` the AWS error answered (``none`` for a success);
- ``marketmeter_records_total{operation, status}``: every usage record, by its verdict
  (``Success``, ``CustomerNotSubscribed``, ``DuplicateRecord``, ``unprocessed``, ...);
- ``marketmeter_call_duration_seconds{operation}``: a histogram of the time to answer;
- ``marketmeter_store_write_queue_depth``: writes queued (or in flight, on PostgreSQL) when
  the last write transaction began; ``marketmeter_store_commit_seconds``: a histogram of the
  write transactions' time to commit;
- ``marketmeter_notifications{target, status}``: webhook deliveries ``pending`` or ``failed``
  per target, read from the store's outbox at each scrape (the target's URL without its user
  info, query or fragment, which may carry credentials).

A call's metrics come from the same ``JournalEntry`` the request journal keeps
(``observe.calls``), so the two always agree. They live in this object's registry, in the one
process that records every call (under ``serve --workers N``, the coordinator:
``observe.single_process``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from marketmeter.protocol.hooks import JournalEntry
from marketmeter.store.base import TargetCounts

__all__ = ["CONTENT_TYPE", "Metrics", "outcome_of", "target_label"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


def target_label(url: str) -> str:
    """A delivery target's URL as a label: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "invalid-url"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


class _Notifications(Collector):
    """The outbox's counts read for one scrape, as a gauge family."""

    def __init__(self, counts: Sequence[TargetCounts]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "marketmeter_notifications",
            "Notification deliveries pending or failed for good, per target.",
            labels=["target", "status"],
        )
        totals: dict[tuple[str, str], int] = {}
        for counts in self._counts:
            for status, count in (("pending", counts.pending), ("failed", counts.failed)):
                if count:
                    key = (target_label(counts.target), status)
                    totals[key] = totals.get(key, 0) + count
        for (target, status), count in sorted(totals.items()):
            family.add_metric([target, status], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


class Metrics:
    """One server's metrics: ``record`` each answered call, ``committed`` each write
    transaction (``store.base.WriteObserver``); ``exposition`` for a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "marketmeter_calls",
            "Calls answered by the AWS endpoint.",
            ["operation", "outcome", "error_type"],
            registry=self.registry,
        )
        self.records = Counter(
            "marketmeter_records",
            "Usage records by verdict.",
            ["operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "marketmeter_call_duration_seconds",
            "Time to answer a call, in seconds.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "marketmeter_store_write_queue_depth",
            "Writes queued or in flight when the last write transaction began.",
            registry=self.registry,
        )
        self.commit_time = Histogram(
            "marketmeter_store_commit_seconds",
            "Time to run and commit a write transaction, in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # the labelled children, found once (labels() costs more than an increment)
        self._calls: dict[tuple[str, str, str], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._records: dict[tuple[str, str], Counter] = {}

    @property
    def enabled(self) -> bool:
        return True

    def record(self, entry: JournalEntry) -> None:
        operation = entry.operation or "unknown"
        key = (operation, outcome_of(entry.status), entry.error_type or "none")
        calls = self._calls.get(key)
        if calls is None:
            calls = self._calls[key] = self.calls.labels(*key)
        calls.inc()
        latency = self._latency.get(operation)
        if latency is None:
            latency = self._latency[operation] = self.latency.labels(operation)
        latency.observe(entry.duration_ms / 1000)
        counted: dict[str, int] = {}
        for verdict in entry.verdicts:
            counted[verdict] = counted.get(verdict, 0) + 1
        for verdict, count in counted.items():
            records = self._records.get((operation, verdict))
            if records is None:
                records = self._records[(operation, verdict)] = self.records.labels(
                    operation, verdict
                )
            records.inc(count)

    def committed(self, queued: int, seconds: float) -> None:
        self.queue_depth.set(queued)
        self.commit_time.observe(seconds)

    def exposition(self, deliveries: Sequence[TargetCounts]) -> bytes:
        """The text format of every metric, ``deliveries`` (the outbox's counts) included."""
        text = generate_latest(self.registry)
        outbox = CollectorRegistry()
        outbox.register(_Notifications(deliveries))
        return text + generate_latest(outbox)
