"""Delivering logged lifecycle events to their product's webhooks, in the background.

``WebhookDeliverer`` is an asyncio task of its own: it claims due deliveries from the event log
(``Store.claim_deliveries``, a lease so that one node POSTs each), POSTs the event's
body (the SNS envelope with SNS's ``x-amz-sns-*`` headers, or the EventBridge event) with
``httpx.AsyncClient`` and a timeout, and records every attempt. A 2xx answer delivers it;
anything else (status, refused connection, timeout) is retried after ``base_delay * 2**(n-1)``
seconds of wall time (at most ``max_delay``), until ``max_attempts`` attempts failed. One URL
gets the deliveries claimed together one after the other, oldest first. Nothing
here runs on a metering call's path: a slow or dead webhook delays only its own deliveries.

``DeliveryPolicy.from_environment`` reads ``MARKETMETER_WEBHOOK_ATTEMPTS``,
``MARKETMETER_WEBHOOK_RETRY_BASE``, ``MARKETMETER_WEBHOOK_RETRY_MAX`` and
``MARKETMETER_WEBHOOK_TIMEOUT`` (seconds), so that tests can make retries fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import orjson

from marketmeter.lifecycle.messages import delivery_headers
from marketmeter.metering.clock import WallClock
from marketmeter.store.base import DueDelivery, Outcome, Store

__all__ = ["DeliveryPolicy", "WebhookDeliverer"]

log = logging.getLogger(__name__)

_ERROR_PREVIEW = 300


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard to try: attempts, backoff (wall seconds), the POST's timeout, how often to
    look for due deliveries and how many to claim at once."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    timeout: float = 5.0
    poll_interval: float = 0.25
    batch: int = 32

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> DeliveryPolicy:
        default = cls()
        return cls(
            max_attempts=int(environ.get("MARKETMETER_WEBHOOK_ATTEMPTS", default.max_attempts)),
            base_delay=float(environ.get("MARKETMETER_WEBHOOK_RETRY_BASE", default.base_delay)),
            max_delay=float(environ.get("MARKETMETER_WEBHOOK_RETRY_MAX", default.max_delay)),
            timeout=float(environ.get("MARKETMETER_WEBHOOK_TIMEOUT", default.timeout)),
        )

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    @property
    def lease(self) -> float:
        """How long a claim holds: longer than any POST may take."""
        return self.timeout * 2 + 30.0


class WebhookDeliverer:
    """Delivers due events of one store until stopped."""

    def __init__(
        self,
        store: Store,
        policy: DeliveryPolicy | None = None,
        wall: WallClock = time.time,
    ) -> None:
        self._store = store
        self._policy = policy or DeliveryPolicy()
        self._wall = wall
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def wake(self) -> None:
        """Look for due deliveries now (called after a transition committed)."""
        self._wake.set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._policy.timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="marketmeter-webhook-deliverer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver_due(self) -> int:
        """Claim and attempt every delivery due now; returns how many were attempted."""
        policy = self._policy
        now = self._wall()
        if not await self._store.deliveries_due(now):
            return 0  # a read: the poll costs no write transaction
        claimed = await self._store.claim_deliveries(now, policy.lease, policy.batch)
        by_url: dict[str, list[DueDelivery]] = {}
        for due in claimed:  # oldest first
            by_url.setdefault(due.url, []).append(due)
        await asyncio.gather(*(self._attempt_in_order(queue) for queue in by_url.values()))
        return len(claimed)

    async def _attempt_in_order(self, queue: list[DueDelivery]) -> None:
        """One URL's deliveries one after the other, so that it gets them in order (retries
        aside); different URLs are POSTed to at the same time."""
        for due in queue:
            await self._attempt(due)

    async def _run(self) -> None:
        while True:
            try:
                if await self.deliver_due():
                    continue
            except Exception:  # a database hiccup must not end the deliverer
                log.exception("webhook deliverer: claiming deliveries failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._policy.poll_interval)

    async def _attempt(self, due: DueDelivery) -> None:
        client = self._client
        assert client is not None, "start() the deliverer first"
        attempted_at = self._wall()
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(
                due.url,
                content=orjson.dumps(due.event.body),
                headers=delivery_headers(due.event),
            )
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            error = f"{type(failure).__name__}: {failure}"[:_ERROR_PREVIEW]
        else:
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:_ERROR_PREVIEW]}"
        outcome: Outcome
        next_at: float | None = None
        if error is None:
            outcome = "delivered"
        elif due.attempt >= self._policy.max_attempts:
            outcome = "failed"
        else:
            outcome = "retry"
            next_at = self._wall() + self._policy.retry_delay(due.attempt)
        try:
            await self._store.record_attempt(due, attempted_at, status, error, outcome, next_at)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("webhook deliverer: recording an attempt failed")
        if outcome == "retry":
            self._schedule_wake(self._policy.retry_delay(due.attempt))

    def _schedule_wake(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._wake.set)
