"""The lifecycle ticker on a real store (each backend): contract ends are announced once the
clock passes them, once each, also by a ticker that starts afresh; one that starts looks back
one unsubscribe delay and no further."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from marketmeter.catalog.model import Catalog
from marketmeter.lifecycle.types import LifecycleAction
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.operator.lifecycle import LifecycleService
from marketmeter.operator.ticker import LifecycleTicker
from marketmeter.store.base import EventQuery, OperatorStore

START = datetime(2027, 1, 15, 8, tzinfo=UTC)
END = START.timestamp() + 86_400
ALICE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"


def service(store: OperatorStore, clock: FixedClock) -> LifecycleService:
    return LifecycleService(
        store, clock, SequentialIds(), SequentialTokens(), unsubscribe_delay=timedelta(hours=1)
    )


def with_end(store: OperatorStore, license_arn: str, end: float) -> None:
    agreement = store.catalog_snapshot_now().agreements_by_license[license_arn]
    ending = replace(agreement, starts_at=START.timestamp(), ends_at=end)
    store.apply_catalog_now(Catalog(agreements=(ending,)))


def logged(store: OperatorStore) -> list[tuple[str, str | None, float]]:
    events = asyncio.run(store.events(EventQuery(since=START.timestamp())))
    return [(e.event.action.value, e.event.license_arn, e.event.occurred_at) for e in events]


def test_ends_are_announced_as_the_clock_passes_them_once_each(store: OperatorStore) -> None:
    with_end(store, ALICE, END)
    clock = FixedClock(START)
    ticker = LifecycleTicker(service(store, clock))

    assert asyncio.run(ticker.tick()) == 0
    clock.advance(timedelta(days=1))  # the end
    assert asyncio.run(ticker.tick()) == 1
    assert asyncio.run(ticker.tick()) == 0
    clock.set(START)  # the clock goes back and passes the end again
    assert asyncio.run(ticker.tick()) == 0
    clock.advance(timedelta(days=2))
    assert asyncio.run(ticker.tick()) == 0  # logged already: not again

    assert logged(store) == [(LifecycleAction.EXPIRE.value, ALICE, END)]


def test_a_starting_ticker_looks_back_one_delay_and_no_further(store: OperatorStore) -> None:
    with_end(store, ALICE, END)
    with_end(store, BOB_CA, END - 5_401)  # its end, and the hour after it, before the look back
    clock = FixedClock(datetime.fromtimestamp(END + 1_800, UTC))  # down across the end

    assert asyncio.run(LifecycleTicker(service(store, clock)).tick()) == 1
    assert logged(store) == [(LifecycleAction.EXPIRE.value, ALICE, END)]
    # a restart within the hour announces nothing twice
    assert asyncio.run(LifecycleTicker(service(store, clock)).tick()) == 0
