"""The lifecycle ticker: what the service clock's passing does to agreements on its own.

- Every unsubscribe-pending agreement whose delay is over becomes unsubscribed, emitting
  ``unsubscribe-success``.
- Every contract end the clock passes, and every hour for final records after one, is
  announced (``lifecycle.contract_ends``): ``entitlement-updated`` or ``Purchase Agreement
  Ended`` (``EXPIRED``), then ``License Deprovisioned``.

Metering does not wait for it (the rules judge an agreement by its state *at now*); the ticker
makes the change durable and the message go out promptly, also right after the clock was
moved (``marketmeter clock advance``). It looks at the cached catalog every ``interval``
seconds of wall time (scanning its agreements only when that catalog changed: a scan of 20,000
agreements four times a second showed in the request path's profile) and commits only when
something is due; on several nodes the first commit wins and the others' are refused or
logged once (the contract ends' event ids are derived from what they announce).

Contract ends are announced from where the last tick stopped; a ticker that starts looks back
one unsubscribe delay, so an end passed while the server was down for less than that is still
announced, and one long past (a catalog's history) is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from marketmeter.catalog.model import AgreementState, CatalogSnapshot
from marketmeter.lifecycle.contract_ends import ContractEnds
from marketmeter.lifecycle.transitions import due_unsubscriptions
from marketmeter.operator.lifecycle import LifecycleService
from marketmeter.refusal import Refusal

__all__ = ["LifecycleTicker"]

log = logging.getLogger(__name__)


class LifecycleTicker:
    def __init__(self, service: LifecycleService, interval: float = 0.25) -> None:
        self._service = service
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._scanned: CatalogSnapshot | None = None
        self._any_pending = False
        self._ends: ContractEnds | None = None
        self._announced_until: float | None = None

    async def tick(self) -> int:
        """Complete every due unsubscription and announce every contract end due now; returns
        how many transitions and events this call committed."""
        catalog = await self._service.store.catalog_snapshot()
        if catalog is not self._scanned:  # a new catalog: does it hold pending agreements?
            pending = AgreementState.UNSUBSCRIBE_PENDING
            self._any_pending = any(a.state is pending for a in catalog.catalog.agreements)
            self._ends = ContractEnds(catalog, self._service.unsubscribe_delay)
            self._scanned = catalog
        return await self._complete_unsubscriptions(catalog) + await self._announce_ends()

    async def _complete_unsubscriptions(self, catalog: CatalogSnapshot) -> int:
        if not self._any_pending:
            return 0
        completed = 0
        for agreement in due_unsubscriptions(catalog, self._service.now()):
            try:
                await self._service.complete_unsubscribe(agreement.license_arn)
            except Refusal:
                continue  # another node (or call) completed it first
            completed += 1
        return completed

    async def _announce_ends(self) -> int:
        now = self._service.now()
        since = self._announced_until
        if since is None:
            since = now - self._service.unsubscribe_delay.total_seconds()
        announced = 0
        if self._ends is not None and self._ends.any_due(since, now):
            done = await self._service.announce_contract_ends(since, now)
            announced = len(done.events)
        # also when the clock went back: passing an end again announces nothing twice
        self._announced_until = now
        return announced

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="marketmeter-lifecycle-ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a database hiccup must not end the ticker
                log.exception("lifecycle ticker: tick failed")
            await asyncio.sleep(self._interval)
