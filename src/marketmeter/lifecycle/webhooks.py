"""Delivering logged lifecycle events to their product's targets, in the background: the
outbox's worker.

``WebhookDeliverer`` is an asyncio task of its own: it claims due deliveries from the event log
(``Store.claim_deliveries``: a lease, so that one node or process sends each; none to a paused
target; a customer's next message to a target only once the one before it is delivered or
failed, so that each customer's messages arrive in order) and sends each with
``lifecycle.targets`` (SNS Publish, SQS SendMessage, EventBridge PutEvents, or an HTTP POST of
the SNS envelope with SNS's ``x-amz-sns-*`` headers, or the EventBridge event), recording every
attempt. Success delivers it; anything else (an AWS error, an HTTP status outside 2xx, a refused
connection, a timeout, an injected ``delivery-failure`` fault) is retried after
``base_delay * 2**(n-1)`` seconds of wall time (at most ``max_delay``), until ``max_attempts``
attempts failed (counted from the last redelivery). One target gets the deliveries claimed
together one after the other, oldest first; different targets are sent to at the same time.
Nothing here runs on a metering call's path: a slow or dead target delays only its own
deliveries.

``DeliveryPolicy.from_environment`` reads ``MARKETMETER_WEBHOOK_ATTEMPTS``,
``MARKETMETER_WEBHOOK_RETRY_BASE``, ``MARKETMETER_WEBHOOK_RETRY_MAX`` and
``MARKETMETER_WEBHOOK_TIMEOUT`` (seconds; every kind of target), so that tests can make retries
fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from marketmeter.catalog.model import CatalogSnapshot, NotificationTarget, TargetKind
from marketmeter.lifecycle.sns_http import SnsHttp
from marketmeter.lifecycle.targets import Sent, TargetSenders, http_body
from marketmeter.metering.clock import WallClock
from marketmeter.store.base import DueDelivery, Outcome, Store

__all__ = ["DeliveryFault", "DeliveryPolicy", "WebhookDeliverer"]

log = logging.getLogger(__name__)

# The test bench's delivery faults: given a product code and a target, the label of the fault
# that makes this attempt fail, or ``None``.
DeliveryFault = Callable[[str, str], str | None]


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
        """How long a claim holds: longer than any attempt may take (connecting and reading,
        each up to ``timeout``), so that a node killed holding claims delays them only this
        long."""
        return max(self.timeout * 4, self.timeout * 2 + 5.0)

    @property
    def attempt_time(self) -> float:
        """The longest one attempt may take: an attempt starts only while its claim holds at
        least this long, so that no other node can claim it meanwhile."""
        return self.timeout * 2 + 1.0


class WebhookDeliverer:
    """Delivers due events of one store until stopped."""

    def __init__(
        self,
        store: Store,
        policy: DeliveryPolicy | None = None,
        wall: WallClock = time.time,
        fault: DeliveryFault | None = None,
        senders: TargetSenders | None = None,
        sns_http: SnsHttp | None = None,
    ) -> None:
        self._store = store
        self._policy = policy or DeliveryPolicy()
        self._wall = wall
        self._fault = fault
        self._senders = senders or TargetSenders(self._policy.timeout)
        self._sns_http = sns_http
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due deliveries now (called after a transition committed, a redelivery or
        a target resumed)."""
        self._wake.set()

    def start(self) -> None:
        self._senders.start()
        self._task = asyncio.create_task(self._run(), name="marketmeter-webhook-deliverer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._senders.close()

    async def deliver_due(self) -> int:
        """Claim and attempt every delivery due now; returns how many were attempted."""
        policy = self._policy
        now = self._wall()
        snapshot = await self._store.catalog_snapshot()
        paused = {
            (code, target.name)
            for code, product in snapshot.products.items()
            for target in product.notification_targets
            if target.paused
        }
        if not await self._store.deliveries_due(now, paused):
            return 0  # a read: the poll costs no write transaction
        claimed = await self._store.claim_deliveries(now, policy.lease, policy.batch, paused)
        holds_until = now + policy.lease - policy.attempt_time
        by_target: dict[tuple[str, str], list[DueDelivery]] = {}
        for due in claimed:  # oldest first
            by_target.setdefault((due.event.product_code, due.url), []).append(due)
        await asyncio.gather(
            *(self._attempt_in_order(snapshot, queue, holds_until) for queue in by_target.values())
        )
        return len(claimed)

    async def _attempt_in_order(
        self, snapshot: CatalogSnapshot, queue: list[DueDelivery], holds_until: float
    ) -> None:
        """One target's deliveries one after the other; different targets are sent to at the
        same time. Those whose claim would run out during the attempt are left to be claimed
        again (by any node) once it has."""
        for due in queue:
            if self._wall() > holds_until:
                return
            await self._attempt(snapshot, due)

    async def _run(self) -> None:
        while True:
            try:
                if await self.deliver_due():
                    continue
            except Exception:  # a database hiccup must not end the deliverer
                log.exception("deliverer: claiming deliveries failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._policy.poll_interval)

    async def _send(self, snapshot: CatalogSnapshot, due: DueDelivery) -> Sent:
        product = snapshot.products.get(due.event.product_code)
        target = product.target(due.url) if product is not None else None
        if target is None:
            return Sent(None, f"no target {due.url} in the catalog")
        if self._fault is not None:
            label = self._fault(due.event.product_code, due.url)
            if label is not None:
                return Sent(None, f"injected: {label}")
        if target.kind is TargetKind.HTTP and target.sns_protocol and self._sns_http is not None:
            return await self._send_sns_http(due, target)
        return await self._senders.send(target, due.event)

    async def _send_sns_http(self, due: DueDelivery, target: NotificationTarget) -> Sent:
        assert self._sns_http is not None
        kind, body, headers = await self._sns_http.messages(
            due.event.product_code, target, due.event
        )
        content = orjson.dumps(body)
        if kind == "Notification" and target.raw_delivery:  # confirmed: the bare Message
            content, headers = http_body(due.event, raw=True)
        sent = await self._senders.post(target, content, headers)
        if kind == "SubscriptionConfirmation" and sent.error is None:
            waiting = "SubscriptionConfirmation sent; waiting for a GET of its SubscribeURL"
            return Sent(sent.status, waiting)
        return sent

    async def _attempt(self, snapshot: CatalogSnapshot, due: DueDelivery) -> None:
        attempted_at = self._wall()
        try:
            sent = await self._send(snapshot, due)
        except Exception as error:  # a sender's bug must not lose the delivery
            log.exception("deliverer: sending failed")
            sent = Sent(None, f"{type(error).__name__}: {error}")
        outcome: Outcome
        next_at: float | None = None
        if sent.error is None:
            outcome = "delivered"
        elif due.attempt - due.retry_base >= self._policy.max_attempts:
            outcome = "failed"
        else:
            outcome = "retry"
            next_at = self._wall() + self._policy.retry_delay(due.attempt - due.retry_base)
        try:
            await self._store.record_attempt(
                due, attempted_at, sent.status, sent.error, outcome, next_at
            )
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("deliverer: recording an attempt failed")
        if outcome == "retry":
            self._schedule_wake(self._policy.retry_delay(due.attempt - due.retry_base))

    def _schedule_wake(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._wake.set)
