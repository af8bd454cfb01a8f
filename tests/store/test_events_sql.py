"""The lifecycle's outbox on both backends: a transition commits with its events and their
deliveries or not at all; the log's filters; claiming and recording deliveries; reset; ``db
copy`` to the other backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from marketmeter.catalog.model import (
    AgreementState,
    Catalog,
    CatalogSnapshot,
    NotificationKind,
    NotificationTarget,
    TargetKind,
)
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.contract_ends import announce_contract_ends
from marketmeter.lifecycle.types import LifecycleAction, Transition
from marketmeter.metering.ids import SequentialIds
from marketmeter.refusal import Refusal
from marketmeter.store.base import (
    DeliveryQuery,
    DueDelivery,
    EventQuery,
    LoggedEvent,
    OperatorStore,
    TargetCounts,
)
from marketmeter.store.copy import CopyRefused, copy_ledger
from tests.conftest import OpenStore

ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
T = 1_800_000_000.0
WALL = 1_000.0


@pytest.fixture
def hooked(store: OperatorStore) -> OperatorStore:
    """The test catalog with two webhook URLs on prod-legacy."""
    product = store.catalog_snapshot_now().products["prod-legacy"]
    urls = ("http://hooks.test/a", "http://hooks.test/b")
    store.apply_catalog_now(Catalog(products=(replace(product, notification_urls=urls),)))
    return store


def run(store: OperatorStore, plan: Callable[[CatalogSnapshot], Transition]) -> Transition:
    return store.commit_transition_now(plan, WALL)


def events(store: OperatorStore, query: EventQuery) -> list[LoggedEvent]:
    return asyncio.run(store.events(query))


def claim(store: OperatorStore, wall_now: float, lease: float, limit: int) -> list[DueDelivery]:
    return asyncio.run(store.claim_deliveries(wall_now, lease, limit))


def unsubscribe(reference: str, ids: SequentialIds) -> Callable[[CatalogSnapshot], Transition]:
    return lambda catalog: lifecycle.unsubscribe(catalog, reference, T, timedelta(hours=1), ids)


def test_a_transition_commits_with_its_events_and_deliveries(hooked: OperatorStore) -> None:
    done = run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds()))
    [event] = done.events
    assert event.seq == 1
    agreement = hooked.catalog_snapshot_now().agreements_by_license[ALICE_LEGACY]
    assert (agreement.state, agreement.pending_since, agreement.ends_at) == (
        AgreementState.UNSUBSCRIBE_PENDING,
        T,
        T + 3600,
    )
    [logged] = events(hooked, EventQuery())
    assert logged.event == event
    assert [(d.url, d.status, d.attempts, d.next_attempt_at) for d in logged.deliveries] == [
        ("http://hooks.test/a", "pending", 0, WALL),
        ("http://hooks.test/b", "pending", 0, WALL),
    ]


def test_a_refused_transition_writes_nothing(hooked: OperatorStore) -> None:
    version = hooked.catalog_snapshot_now().version
    run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds()))
    with pytest.raises(Refusal):
        run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds(100)))  # already pending
    assert hooked.catalog_snapshot_now().version == version + 1
    assert len(events(hooked, EventQuery())) == 1


def test_the_log_filters_by_action_buyer_time_and_seq(hooked: OperatorStore) -> None:
    ids = SequentialIds()
    run(hooked, unsubscribe(ALICE_LEGACY, ids))
    run(hooked, lambda catalog: lifecycle.suspend(catalog, BOB_LEGACY, T + 10, ids))

    def seqs(query: EventQuery) -> list[int | None]:
        return [item.event.seq for item in events(hooked, query)]

    assert seqs(EventQuery(action="suspend")) == [2]
    assert seqs(EventQuery(buyer_account_id="444455556666")) == [1]
    assert seqs(EventQuery(since=T + 5)) == [2]
    assert seqs(EventQuery(until=T + 5)) == [1]
    assert seqs(EventQuery(after=1)) == [2]
    assert seqs(EventQuery(product_code="prod-ca")) == []
    assert seqs(EventQuery(limit=1)) == [1]


def test_a_claimed_delivery_is_not_claimed_again_until_recorded(hooked: OperatorStore) -> None:
    run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds()))
    first = claim(hooked, WALL, 60.0, 1)
    second = claim(hooked, WALL, 60.0, 10)
    assert [(d.url, d.attempt) for d in first] == [("http://hooks.test/a", 1)]
    assert [(d.url, d.attempt) for d in second] == [("http://hooks.test/b", 1)]
    assert claim(hooked, WALL + 1, 60.0, 10) == []

    asyncio.run(hooked.record_attempt(first[0], WALL + 1, 500, "HTTP 500", "retry", WALL + 3))
    assert claim(hooked, WALL + 2, 60.0, 10) == []
    [again] = claim(hooked, WALL + 3, 60.0, 10)
    assert (again.url, again.attempt) == ("http://hooks.test/a", 2)
    asyncio.run(hooked.record_attempt(again, WALL + 3, 200, None, "delivered"))
    # an expired lease is claimed again
    [expired] = claim(hooked, WALL + 61, 60.0, 10)
    assert (expired.url, expired.attempt) == ("http://hooks.test/b", 1)

    [logged] = events(hooked, EventQuery())
    delivered = logged.deliveries[0]
    assert (delivered.status, delivered.attempts, delivered.delivered_at) == (
        "delivered",
        2,
        WALL + 3,
    )
    assert [(a.attempt, a.status_code, a.error) for a in delivered.history] == [
        (1, 500, "HTTP 500"),
        (2, 200, None),
    ]


def test_reset_empties_the_log_and_a_snapshot_restores_it(hooked: OperatorStore) -> None:
    run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds()))
    asyncio.run(hooked.save_snapshot("with-event", T))
    deleted = asyncio.run(hooked.reset(drop_catalog=False))
    assert (deleted["lifecycle_events"], deleted["event_deliveries"]) == (1, 2)
    assert events(hooked, EventQuery()) == []
    asyncio.run(hooked.restore_snapshot("with-event"))
    [logged] = events(hooked, EventQuery())
    assert (logged.event.seq, len(logged.deliveries)) == (1, 2)
    restored = hooked.catalog_snapshot_now().products["prod-legacy"]
    assert restored.notification_urls == ("http://hooks.test/a", "http://hooks.test/b")
    # the next event follows the restored one
    done = run(hooked, lambda c: lifecycle.suspend(c, BOB_LEGACY, T, SequentialIds(50)))
    assert done.events[0].seq == 2


def test_a_delivery_recorded_after_a_reset_touches_nothing(hooked: OperatorStore) -> None:
    """A POST in flight when the log is reset: its result must not land on the event that
    now has its number (SQLite numbers from 1 again), nor fail (PostgreSQL's foreign key)."""
    run(hooked, unsubscribe(ALICE_LEGACY, SequentialIds()))
    [stale] = claim(hooked, WALL, 60.0, 1)
    asyncio.run(hooked.reset(drop_catalog=False))
    run(hooked, lambda c: lifecycle.suspend(c, BOB_LEGACY, T, SequentialIds(50)))

    asyncio.run(hooked.record_attempt(stale, WALL + 1, 200, None, "delivered"))

    [logged] = events(hooked, EventQuery())
    assert logged.event.event_id != stale.event.event_id
    assert [(d.status, d.attempts, d.history) for d in logged.deliveries] == [
        ("pending", 0, ()),
        ("pending", 0, ()),
    ]


@pytest.fixture
def other_backend_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """An empty ledger on the other backend: ``db copy`` runs SQLite → PostgreSQL and back."""
    if backend == "postgresql":
        yield str(tmp_path / "copy.db")
        return
    databases = request.getfixturevalue("postgres_databases")
    url = databases.acquire()
    try:
        yield url
    finally:
        databases.release(url)


def test_db_copy_takes_the_event_log_with_its_numbers_and_delivery_state(
    hooked: OperatorStore, other_backend_url: str, open_test_store: OpenStore
) -> None:
    ids = SequentialIds()
    run(hooked, unsubscribe(ALICE_LEGACY, ids))
    run(hooked, lambda catalog: lifecycle.suspend(catalog, BOB_LEGACY, T + 10, ids))
    [claimed] = claim(hooked, WALL, 60.0, 1)
    asyncio.run(hooked.record_attempt(claimed, WALL + 1, 500, "HTTP 500", "retry", 9.0))
    target = open_test_store(other_backend_url)

    report = copy_ledger(hooked, target)

    counts = report.counts
    assert (
        counts["lifecycle_events"],
        counts["event_deliveries"],
        counts["delivery_attempts"],
    ) == (
        2,
        4,
        1,
    )
    everything = EventQuery()
    assert events(target, everything) == events(hooked, everything)
    # the target's next event follows the copied ones
    done = run(target, lambda c: lifecycle.resubscribe(c, BOB_LEGACY, T + 20, SequentialIds(50)))
    assert done.events[0].seq == 3


def test_db_copy_refuses_a_target_that_holds_events(
    hooked: OperatorStore, other_backend_url: str, open_test_store: OpenStore
) -> None:
    target = open_test_store(other_backend_url)
    target.apply_catalog_now(hooked.catalog_snapshot_now().catalog)
    run(target, lambda c: lifecycle.suspend(c, BOB_LEGACY, T, SequentialIds()))
    with pytest.raises(CopyRefused) as refused:
        copy_ledger(hooked, target)
    assert str(refused.value) == "the target already holds 1 event(s); copy into an empty ledger"


# --- delivery targets: order per customer, pause, redeliver, counts -------------------------


@pytest.fixture
def targeted(store: OperatorStore) -> OperatorStore:
    """prod-legacy with one named SQS target (and no webhook)."""
    product = store.catalog_snapshot_now().products["prod-legacy"]
    queue = NotificationTarget(
        "queue", TargetKind.SQS, tuple(NotificationKind), queue_url="http://q.test/1/q"
    )
    store.apply_catalog_now(Catalog(products=(replace(product, notification_targets=(queue,)),)))
    return store


def test_a_customers_next_delivery_waits_for_the_one_before_it(targeted: OperatorStore) -> None:
    ids = SequentialIds()
    run(targeted, unsubscribe(ALICE_LEGACY, ids))
    run(targeted, lambda catalog: lifecycle.suspend(catalog, ALICE_LEGACY, T + 1, ids))
    run(targeted, unsubscribe(BOB_LEGACY, ids))
    first = claim(targeted, WALL, 30, 10)
    assert [(d.event.seq, d.url, d.attempt) for d in first] == [(1, "queue", 1), (3, "queue", 1)]
    asyncio.run(targeted.record_attempt(first[0], WALL + 1, None, "down", "retry", WALL + 2))
    # alice's #1 is due again, her #2 waits for it; bob's is leased until WALL + 30
    [again] = claim(targeted, WALL + 5, 30, 10)
    assert (again.event.seq, again.attempt) == (1, 2)
    asyncio.run(targeted.record_attempt(again, WALL + 6, 200, None, "delivered"))
    [second] = claim(targeted, WALL + 6, 30, 10)
    assert (second.event.seq, second.attempt) == (2, 1)


def test_a_paused_target_keeps_its_deliveries_and_redelivery_starts_afresh(
    targeted: OperatorStore,
) -> None:
    done = run(targeted, unsubscribe(ALICE_LEGACY, SequentialIds()))
    paused = {("prod-legacy", "queue")}
    assert not asyncio.run(targeted.deliveries_due(WALL, paused))
    assert asyncio.run(targeted.claim_deliveries(WALL, 30, 10, paused)) == []
    [due] = claim(targeted, WALL, 30, 10)
    asyncio.run(targeted.record_attempt(due, WALL + 1, 200, None, "delivered"))
    assert asyncio.run(targeted.delivery_counts()) == [
        TargetCounts("prod-legacy", "queue", pending=0, delivered=1, failed=0)
    ]
    event_id = done.events[0].event_id
    again = asyncio.run(targeted.redeliver(event_id, "queue", WALL + 2))
    assert again is not None
    assert (again.delivery.status, again.delivery.attempts) == ("pending", 1)
    [due] = claim(targeted, WALL + 2, 30, 10)
    assert (due.attempt, due.retry_base) == (2, 1)
    assert asyncio.run(targeted.redeliver(event_id, "nowhere", WALL)) is None
    [listed] = asyncio.run(targeted.deliveries(DeliveryQuery(target="queue", status="pending")))
    assert listed.event.event_id == event_id


FRANK_LEGACY = "arn:aws:license-manager::666677778888:license:l-f0000000000000000000000000000001"
FRANK_END = 1_609_459_200.0  # 2021-01-01T00:00:00Z, the test catalog's ended contract


def test_a_contract_end_announced_twice_is_logged_and_delivered_once(
    hooked: OperatorStore,
) -> None:
    """Two nodes' tickers (or a restart looking back) announce one end: its derived event id
    is logged once, and the second commit returns no event."""
    hour = timedelta(hours=1)

    def announce(catalog: CatalogSnapshot) -> Transition:
        return announce_contract_ends(catalog, FRANK_END - 1, FRANK_END, hour)

    [first] = run(hooked, announce).events
    assert (first.action, first.license_arn, first.occurred_at) == (
        LifecycleAction.EXPIRE,
        FRANK_LEGACY,
        FRANK_END,
    )
    assert run(hooked, announce).events == ()
    assert [logged.event.event_id for logged in events(hooked, EventQuery())] == [first.event_id]
    assert len(claim(hooked, WALL, 30.0, 10)) == 2  # one delivery to each of the two webhooks
