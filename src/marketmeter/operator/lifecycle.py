"""Running lifecycle transitions against a store: each one planned and applied, with its
events, in one transaction (``Store.commit_transition``) on the service clock.

``LifecycleService`` is what the admin API, the unsubscribe ticker and the CLI's server-side
calls use; after each commit it wakes the webhook deliverer (``on_commit``), so a message is
POSTed at once rather than at the deliverer's next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.types import Transition
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.registration_tokens import TokenGenerator
from marketmeter.store.base import EventQuery, LoggedEvent, Store

__all__ = ["LifecycleService", "WallClock"]

WallClock = Callable[[], float]


class LifecycleService:
    """The lifecycle's transitions on one store, clock and id generator."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        tokens: TokenGenerator,
        unsubscribe_delay: timedelta,
        wall: WallClock = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.unsubscribe_delay = unsubscribe_delay
        self._ids = ids
        self._tokens = tokens
        self._wall = wall
        self._listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every transition that logged events."""
        self._listeners.append(listener)

    def now(self) -> float:
        return self.clock.now().timestamp()

    async def _run(self, plan: Callable[[CatalogSnapshot], Transition]) -> Transition:
        wall = self._wall()
        done = await self.store.commit_transition(plan, wall)
        if done.events:
            for listener in self._listeners:
                listener()
        return done

    async def subscribe(
        self,
        product_code: str,
        buyer_account_id: str,
        free_trial: bool = False,
        offer_id: str | None = None,
    ) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.subscribe(
                catalog,
                product_code,
                buyer_account_id,
                now,
                self._tokens,
                self._ids,
                free_trial,
                offer_id,
            )
        )

    async def subscribe_fail(
        self,
        product_code: str,
        buyer_account_id: str,
        free_trial: bool = False,
        offer_id: str | None = None,
    ) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.subscribe_fail(
                catalog, product_code, buyer_account_id, now, self._ids, free_trial, offer_id
            )
        )

    async def unsubscribe(self, reference: str) -> Transition:
        now = self.now()
        delay = self.unsubscribe_delay
        return await self._run(
            lambda catalog: lifecycle.unsubscribe(catalog, reference, now, delay, self._ids)
        )

    async def complete_unsubscribe(self, reference: str) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.complete_unsubscribe(catalog, reference, now, self._ids)
        )

    async def suspend(self, reference: str) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.suspend(catalog, reference, now, self._ids)
        )

    async def resubscribe(self, reference: str) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.resubscribe(catalog, reference, now, self._ids)
        )

    async def update_entitlement(
        self, reference: str, free_trial: bool | None = None
    ) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.update_entitlement(
                catalog, reference, now, self._ids, free_trial
            )
        )

    async def events(self, query: EventQuery) -> list[LoggedEvent]:
        return await self.store.events(query)
