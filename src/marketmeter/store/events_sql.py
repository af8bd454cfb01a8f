"""The lifecycle's SQL, for every backend: transitions with their event log (an outbox), the
log's queries, and claiming and recording webhook deliveries.

Written once against ``store.sql_connection.SqlConnection``; ``store.sql_store.SqlStore`` runs
each function in a transaction (or, for the reads, on a connection) of its backend and offers
it as a typed method of the contract (``commit_transition``, ``events``, ...).

- ``commit_transition`` locks the catalog (SQLite's single writer; PostgreSQL: the
  ``catalog_state`` row), reads it, plans the transition on what it read, applies the catalog
  change and logs its events with one pending delivery per webhook URL of the product: the
  state change and its messages commit together or not at all. Two nodes making the same
  transition at once are serialized; the second sees the first's result and is refused.
- ``claim_deliveries`` leases due deliveries (``claimed_until``) so that one POST goes out per
  delivery across nodes (PostgreSQL: ``FOR UPDATE SKIP LOCKED``); ``record_attempt`` stores what
  the POST got and when to try again.

Times: ``occurred_at`` is the service clock; delivery times are wall-clock epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.lifecycle.types import Channel, LifecycleAction, LifecycleEvent, Transition
from marketmeter.store.base import (
    DeliveryAttempt,
    DeliveryRecord,
    DueDelivery,
    EventQuery,
    LoggedEvent,
    Outcome,
)
from marketmeter.store.catalog_sql import apply_catalog, read_catalog
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "EVENT_LOG_TABLES",
    "claim_deliveries",
    "commit_transition",
    "deliveries_due",
    "list_events",
    "log_events",
    "record_attempt",
]

# The event log's tables with their columns and the order they are read in (snapshots and
# ``db copy`` move them whole, keeping each event's seq, which its deliveries refer to).
EVENT_LOG_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "lifecycle_events": (
        (
            "seq",
            "event_id",
            "action",
            "product_code",
            "buyer_account_id",
            "license_arn",
            "channel",
            "topic",
            "occurred_at",
            "body",
        ),
        "seq",
    ),
    "event_deliveries": (
        (
            "event_seq",
            "url",
            "status",
            "attempts",
            "next_attempt_at",
            "claimed_until",
            "delivered_at",
        ),
        "event_seq, url",
    ),
    "delivery_attempts": (
        ("event_seq", "url", "attempt", "attempted_at", "status_code", "error"),
        "event_seq, url, attempt",
    ),
}

_EVENT_COLUMNS = (
    "seq, event_id, action, product_code, buyer_account_id, license_arn, channel, topic, "
    "occurred_at, body"
)


def commit_transition(
    sql: SqlConnection, plan: Callable[[CatalogSnapshot], Transition], wall_now: float
) -> Transition:
    """Plan a transition on the catalog as it stands in this transaction and apply it with its
    events; returns it with the events' ``seq`` set. ``plan`` may raise to refuse."""
    lock = " FOR UPDATE" if sql.dialect == "postgresql" else ""
    version = int(
        sql.execute(f"SELECT version FROM catalog_state WHERE id = 1{lock}").fetchone()[0]
    )
    snapshot = CatalogSnapshot(version, read_catalog(sql))
    transition = plan(snapshot)
    changes = transition.changes
    if changes.buyers or changes.agreements or transition.tokens:
        apply_catalog(sql, changes, transition.tokens)
    urls = {code: product.notification_urls for code, product in snapshot.products.items()}
    logged = log_events(sql, transition.events, urls, wall_now)
    return replace(transition, events=logged)


def log_events(
    sql: SqlConnection,
    events: Sequence[LifecycleEvent],
    urls: dict[str, tuple[str, ...]],
    wall_now: float,
) -> tuple[LifecycleEvent, ...]:
    """Store ``events`` and a pending delivery of each to every URL of its product (none for
    channel ``none``); returns them with ``seq`` set."""
    logged = []
    for event in events:
        row = sql.execute(
            "INSERT INTO lifecycle_events (event_id, action, product_code, buyer_account_id, "
            "license_arn, channel, topic, occurred_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING seq",
            (
                event.event_id,
                event.action.value,
                event.product_code,
                event.buyer_account_id,
                event.license_arn,
                event.channel.value,
                event.topic,
                event.occurred_at,
                orjson.dumps(event.body).decode(),
            ),
        ).fetchone()
        seq = int(row[0])
        if event.channel is not Channel.NONE:
            targets = list(dict.fromkeys(urls.get(event.product_code, ())))
            sql.executemany(
                "INSERT INTO event_deliveries (event_seq, url, status, attempts, "
                "next_attempt_at) VALUES (?, ?, 'pending', 0, ?)",
                [(seq, url, wall_now) for url in targets],
            )
        logged.append(replace(event, seq=seq))
    return tuple(logged)


def _event(row: Sequence[Any]) -> LifecycleEvent:
    seq, event_id, action, product, buyer, license_arn, channel, topic, at, body = row
    return LifecycleEvent(
        event_id=event_id,
        action=LifecycleAction(action),
        product_code=product,
        buyer_account_id=buyer,
        license_arn=license_arn,
        channel=Channel(channel),
        topic=topic,
        occurred_at=float(at),
        body=orjson.loads(body),
        seq=int(seq),
    )


def list_events(sql: SqlConnection, query: EventQuery) -> list[LoggedEvent]:
    """Logged events matching ``query``, oldest first, each with its deliveries."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("product_code = ?", query.product_code),
        ("buyer_account_id = ?", query.buyer_account_id),
        ("action = ?", query.action),
        ("occurred_at >= ?", query.since),
        ("occurred_at < ?", query.until),
        ("seq > ?", query.after),
    ):
        if value is not None:
            conditions.append(column)
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = sql.execute(
        f"SELECT {_EVENT_COLUMNS} FROM lifecycle_events{where} ORDER BY seq LIMIT ?",
        (*params, query.limit),
    ).fetchall()
    events = [_event(row) for row in rows]
    if not events:
        return []
    seqs = [event.seq for event in events]
    marks = ", ".join("?" * len(seqs))
    history: dict[tuple[int, str], list[DeliveryAttempt]] = {}
    for seq, url, attempt, at, status_code, error in sql.execute(
        "SELECT event_seq, url, attempt, attempted_at, status_code, error FROM delivery_attempts "
        f"WHERE event_seq IN ({marks}) ORDER BY event_seq, url, attempt",
        seqs,
    ):
        history.setdefault((int(seq), url), []).append(
            DeliveryAttempt(int(attempt), float(at), status_code, error)
        )
    deliveries: dict[int, list[DeliveryRecord]] = {}
    for seq, url, status, attempts, next_at, delivered_at in sql.execute(
        "SELECT event_seq, url, status, attempts, next_attempt_at, delivered_at "
        f"FROM event_deliveries WHERE event_seq IN ({marks}) ORDER BY event_seq, url",
        seqs,
    ):
        deliveries.setdefault(int(seq), []).append(
            DeliveryRecord(
                url,
                status,
                int(attempts),
                next_at,
                delivered_at,
                tuple(history.get((int(seq), url), ())),
            )
        )
    return [LoggedEvent(event, tuple(deliveries.get(event.seq or 0, ()))) for event in events]


def deliveries_due(sql: SqlConnection, wall_now: float) -> bool:
    """Whether any delivery is due and unclaimed at ``wall_now`` (a read)."""
    row = sql.execute(
        "SELECT 1 FROM event_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
        "AND (claimed_until IS NULL OR claimed_until < ?) LIMIT 1",
        (wall_now, wall_now),
    ).fetchone()
    return row is not None


def claim_deliveries(
    sql: SqlConnection, wall_now: float, lease: float, limit: int
) -> list[DueDelivery]:
    """Lease up to ``limit`` due deliveries (pending, due, not leased by a live claim) until
    ``wall_now + lease``; returns them, the oldest due first."""
    skip = " FOR UPDATE SKIP LOCKED" if sql.dialect == "postgresql" else ""
    claimed = sql.execute(
        "UPDATE event_deliveries SET claimed_until = ? WHERE (event_seq, url) IN ("
        "SELECT event_seq, url FROM event_deliveries WHERE status = 'pending' "
        "AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
        f"ORDER BY next_attempt_at, event_seq LIMIT ?{skip}) "
        "RETURNING event_seq, url, attempts, next_attempt_at",
        (wall_now + lease, wall_now, wall_now, limit),
    ).fetchall()
    if not claimed:
        return []
    seqs = sorted({int(row[0]) for row in claimed})
    marks = ", ".join("?" * len(seqs))
    events = {
        event.seq: event
        for event in map(
            _event,
            sql.execute(
                f"SELECT {_EVENT_COLUMNS} FROM lifecycle_events WHERE seq IN ({marks})", seqs
            ).fetchall(),
        )
    }
    ordered = sorted(claimed, key=lambda row: (row[3], row[0], row[1]))
    return [
        DueDelivery(events[int(seq)], url, int(attempts) + 1) for seq, url, attempts, _ in ordered
    ]


def record_attempt(
    sql: SqlConnection,
    due: DueDelivery,
    attempted_at: float,
    status_code: int | None,
    error: str | None,
    outcome: Outcome,
    next_attempt_at: float | None = None,
) -> None:
    """Store one POST's result and release the claim: delivered, to be retried at
    ``next_attempt_at``, or failed for good. Nothing, if the event is no longer in the log (a
    reset or a restore during the POST): its number may already be another event's."""
    seq = due.event.seq
    still_logged = sql.execute(
        "SELECT 1 FROM lifecycle_events WHERE seq = ? AND event_id = ?", (seq, due.event.event_id)
    ).fetchone()
    if still_logged is None:
        return
    sql.execute(
        "INSERT INTO delivery_attempts (event_seq, url, attempt, attempted_at, status_code, "
        "error) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_seq, url, attempt) DO NOTHING",
        (seq, due.url, due.attempt, attempted_at, status_code, error),
    )
    status = "pending" if outcome == "retry" else outcome
    sql.execute(
        "UPDATE event_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, "
        "delivered_at = ?, claimed_until = NULL WHERE event_seq = ? AND url = ?",
        (
            status,
            due.attempt,
            next_attempt_at if outcome == "retry" else None,
            attempted_at if outcome == "delivered" else None,
            seq,
            due.url,
        ),
    )
