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
- ``claim_deliveries`` leases due deliveries (``claimed_until``) so that one attempt goes out
  per delivery across nodes and processes (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), skipping
  paused targets and any delivery whose customer (product and buyer) has an earlier delivery to
  the same target still pending: a target gets each customer's messages in order;
  ``record_attempt`` stores what the attempt got and when to try again.
- ``list_deliveries``, ``redeliver`` and ``delivery_counts``: the test bench's and the
  operator's view of the deliveries per target.

A delivery's ``url`` column names its target: a delivery target's name or a webhook URL of the
product's ``notification_urls``.

Times: ``occurred_at`` is the service clock; delivery times are wall-clock epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from marketmeter.catalog.model import CatalogSnapshot, Product
from marketmeter.lifecycle.types import Channel, LifecycleAction, LifecycleEvent, Transition
from marketmeter.store.base import (
    DeliveryAttempt,
    DeliveryQuery,
    DeliveryRecord,
    DueDelivery,
    EventQuery,
    LoggedEvent,
    Outcome,
    TargetCounts,
    TargetDelivery,
)
from marketmeter.store.catalog_sql import apply_catalog, read_catalog
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "EVENT_LOG_TABLES",
    "claim_deliveries",
    "commit_transition",
    "confirm_sns_subscription",
    "deliveries_due",
    "delivery_counts",
    "list_deliveries",
    "list_events",
    "log_events",
    "record_attempt",
    "redeliver",
    "sns_subscription",
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
            "retry_base",
        ),
        "event_seq, url",
    ),
    "delivery_attempts": (
        ("event_seq", "url", "attempt", "attempted_at", "status_code", "error"),
        "event_seq, url, attempt",
    ),
    "sns_subscriptions": (
        ("token", "product_code", "target", "topic_arn", "confirmed_at"),
        "token",
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
    logged = log_events(sql, transition.events, snapshot.products, wall_now)
    return replace(transition, events=logged)


def log_events(
    sql: SqlConnection,
    events: Sequence[LifecycleEvent],
    products: Mapping[str, Product],
    wall_now: float,
) -> tuple[LifecycleEvent, ...]:
    """Store ``events`` and a pending delivery of each to every webhook URL of its product and
    every delivery target of the product that takes its kind (none for channel ``none``);
    returns them with ``seq`` set. An event whose id is logged already is skipped (and left
    out of what is returned): a clock-driven event's id is derived, so that a second node or
    a restart announcing it again logs it once (lifecycle.contract_ends)."""
    logged = []
    for event in events:
        row = sql.execute(
            "INSERT INTO lifecycle_events (event_id, action, product_code, buyer_account_id, "
            "license_arn, channel, topic, occurred_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING seq",
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
        if row is None:
            continue
        seq = int(row[0])
        product = products.get(event.product_code)
        if event.kind is not None and product is not None:
            named = [t.name for t in product.notification_targets if event.kind in t.notifications]
            targets = list(dict.fromkeys([*product.notification_urls, *named]))
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
    seqs = [event.seq or 0 for event in events]
    marks = ", ".join("?" * len(seqs))
    history = _history(sql, seqs)
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


def _paused(paused: Collection[tuple[str, str]]) -> tuple[str, list[str]]:
    """The condition leaving out deliveries to paused (product, target) pairs, and its
    parameters (neither a product code nor a target's name holds a \\x01)."""
    if not paused:
        return "", []
    marks = ", ".join("?" * len(paused))
    return (
        f" AND (e.product_code || ? || d.url) NOT IN ({marks})",
        ["\x01", *(f"{code}\x01{target}" for code, target in paused)],
    )


# A delivery is claimable when it is pending, due, not leased by a live claim, and no earlier
# delivery of the same customer (product and buyer) to the same target is still pending.
_CLAIMABLE = (
    "FROM event_deliveries d JOIN lifecycle_events e ON e.seq = d.event_seq "
    "WHERE d.status = 'pending' AND d.next_attempt_at <= ? "
    "AND (d.claimed_until IS NULL OR d.claimed_until < ?) "
    "AND NOT EXISTS (SELECT 1 FROM event_deliveries p JOIN lifecycle_events pe "
    "ON pe.seq = p.event_seq WHERE p.url = d.url AND p.status = 'pending' "
    "AND p.event_seq < d.event_seq AND pe.product_code = e.product_code "
    "AND pe.buyer_account_id = e.buyer_account_id)"
)


def deliveries_due(
    sql: SqlConnection, wall_now: float, paused: Collection[tuple[str, str]] = ()
) -> bool:
    """Whether any delivery is claimable at ``wall_now`` (a read)."""
    condition, params = _paused(paused)
    row = sql.execute(
        f"SELECT 1 {_CLAIMABLE}{condition} LIMIT 1", (wall_now, wall_now, *params)
    ).fetchone()
    return row is not None


def claim_deliveries(
    sql: SqlConnection,
    wall_now: float,
    lease: float,
    limit: int,
    paused: Collection[tuple[str, str]] = (),
) -> list[DueDelivery]:
    """Lease up to ``limit`` claimable deliveries until ``wall_now + lease``; returns them,
    the oldest event first. At most one per customer and target: the next is claimable once
    this one is delivered or failed."""
    skip = " FOR UPDATE OF d SKIP LOCKED" if sql.dialect == "postgresql" else ""
    condition, params = _paused(paused)
    claimed = sql.execute(
        "UPDATE event_deliveries SET claimed_until = ? WHERE (event_seq, url) IN ("
        f"SELECT d.event_seq, d.url {_CLAIMABLE}{condition} "
        f"ORDER BY d.event_seq LIMIT ?{skip}) "
        "RETURNING event_seq, url, attempts, retry_base",
        (wall_now + lease, wall_now, wall_now, *params, limit),
    ).fetchall()
    if not claimed:
        return []
    seqs = sorted({int(row[0]) for row in claimed})
    events = _events_by_seq(sql, seqs)
    ordered = sorted(claimed, key=lambda row: (row[0], row[1]))
    return [
        DueDelivery(events[int(seq)], url, int(attempts) + 1, int(base))
        for seq, url, attempts, base in ordered
    ]


def _events_by_seq(sql: SqlConnection, seqs: Sequence[int]) -> dict[int | None, LifecycleEvent]:
    marks = ", ".join("?" * len(seqs))
    return {
        event.seq: event
        for event in map(
            _event,
            sql.execute(
                f"SELECT {_EVENT_COLUMNS} FROM lifecycle_events WHERE seq IN ({marks})", seqs
            ).fetchall(),
        )
    }


def _history(
    sql: SqlConnection, seqs: Sequence[int]
) -> dict[tuple[int, str], list[DeliveryAttempt]]:
    marks = ", ".join("?" * len(seqs))
    history: dict[tuple[int, str], list[DeliveryAttempt]] = {}
    for seq, url, attempt, at, status_code, error in sql.execute(
        "SELECT event_seq, url, attempt, attempted_at, status_code, error FROM delivery_attempts "
        f"WHERE event_seq IN ({marks}) ORDER BY event_seq, url, attempt",
        list(seqs),
    ):
        history.setdefault((int(seq), url), []).append(
            DeliveryAttempt(int(attempt), float(at), status_code, error)
        )
    return history


def list_deliveries(sql: SqlConnection, query: DeliveryQuery) -> list[TargetDelivery]:
    """Deliveries matching ``query``, oldest event first (then by target)."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("e.product_code = ?", query.product_code),
        ("d.url = ?", query.target),
        ("d.status = ?", query.status),
        ("e.buyer_account_id = ?", query.buyer_account_id),
        ("d.event_seq = ?", query.event_seq),
    ):
        if value is not None:
            conditions.append(column)
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = sql.execute(
        "SELECT d.event_seq, d.url, d.status, d.attempts, d.next_attempt_at, d.delivered_at "
        "FROM event_deliveries d JOIN lifecycle_events e ON e.seq = d.event_seq"
        f"{where} ORDER BY d.event_seq, d.url LIMIT ?",
        (*params, query.limit),
    ).fetchall()
    if not rows:
        return []
    seqs = sorted({int(row[0]) for row in rows})
    events = _events_by_seq(sql, seqs)
    history = _history(sql, seqs)
    return [
        TargetDelivery(
            events[int(seq)],
            DeliveryRecord(
                url,
                status,
                int(attempts),
                next_at,
                delivered_at,
                tuple(history.get((int(seq), url), ())),
            ),
        )
        for seq, url, status, attempts, next_at, delivered_at in rows
    ]


def redeliver(
    sql: SqlConnection, event: str, target: str, wall_now: float
) -> TargetDelivery | None:
    """Make the delivery of ``event`` (an event id, or a seq) to ``target`` pending again,
    due now, with a fresh attempt limit (its attempts so far stay in the history)."""
    column = "seq" if event.isdigit() else "event_id"
    row = sql.execute(
        f"SELECT seq FROM lifecycle_events WHERE {column} = ?",
        (int(event) if event.isdigit() else event,),
    ).fetchone()
    if row is None:
        return None
    seq = int(row[0])
    updated = sql.execute(
        "UPDATE event_deliveries SET status = 'pending', next_attempt_at = ?, "
        "claimed_until = NULL, delivered_at = NULL, retry_base = attempts "
        "WHERE event_seq = ? AND url = ? RETURNING event_seq",
        (wall_now, seq, target),
    ).fetchone()
    if updated is None:
        return None
    [found] = list_deliveries(sql, DeliveryQuery(target=target, event_seq=seq, limit=1))
    return found


def delivery_counts(sql: SqlConnection) -> list[TargetCounts]:
    """Deliveries per product and target and status, by product and target."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for code, url, status, count in sql.execute(
        "SELECT e.product_code, d.url, d.status, count(*) FROM event_deliveries d "
        "JOIN lifecycle_events e ON e.seq = d.event_seq "
        "GROUP BY e.product_code, d.url, d.status ORDER BY e.product_code, d.url"
    ):
        counts.setdefault((code, url), {})[status] = int(count)
    return [
        TargetCounts(
            code,
            url,
            found.get("pending", 0),
            found.get("delivered", 0),
            found.get("failed", 0),
        )
        for (code, url), found in counts.items()
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


def sns_subscription(
    sql: SqlConnection, product_code: str, target: str, topic_arn: str, new_token: str
) -> tuple[str, bool]:
    """The SNS HTTP(S) subscription of ``target`` to ``topic_arn``: its token (``new_token``
    if it is new; the first node's wins) and whether it is confirmed."""
    sql.execute(
        "INSERT INTO sns_subscriptions (token, product_code, target, topic_arn) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (new_token, product_code, target, topic_arn),
    )
    token, confirmed_at = sql.execute(
        "SELECT token, confirmed_at FROM sns_subscriptions WHERE product_code = ? "
        "AND target = ? AND topic_arn = ?",
        (product_code, target, topic_arn),
    ).fetchone()
    return str(token), confirmed_at is not None


def confirm_sns_subscription(
    sql: SqlConnection, topic_arn: str, token: str, wall_now: float
) -> bool:
    """Confirm the subscription of ``token`` to ``topic_arn``; whether there is one."""
    row = sql.execute(
        "UPDATE sns_subscriptions SET confirmed_at = coalesce(confirmed_at, ?) "
        "WHERE token = ? AND topic_arn = ? RETURNING token",
        (wall_now, token, topic_arn),
    ).fetchone()
    return row is not None
