"""The event log's outbox as counts, for the metrics: deliveries still pending and those that
failed for good, per target URL (``event_deliveries``, one row per event and URL)."""

from __future__ import annotations

from marketmeter.store.sql_connection import SqlConnection

__all__ = ["delivery_counts"]

_COUNTS = (
    "SELECT url, status, count(*) FROM event_deliveries "
    "WHERE status IN ('pending', 'failed') GROUP BY url, status ORDER BY url, status"
)


def delivery_counts(sql: SqlConnection) -> list[tuple[str, str, int]]:
    """``(url, status, deliveries)`` for the statuses ``pending`` and ``failed``."""
    return [(row[0], row[1], int(row[2])) for row in sql.execute(_COUNTS)]
