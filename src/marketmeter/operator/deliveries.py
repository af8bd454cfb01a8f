"""The outbox's deliveries as an operator sees them: per target, redelivered, paused, counted.

- ``deliveries``: deliveries filtered by product, target (its name or webhook URL), status and
  buyer, oldest event first, each with the event and every attempt;
- ``redeliver``: send one event to one target again (due now, a fresh attempt limit);
- ``pause`` / ``resume``: a paused target (the catalog entry's ``paused``) keeps its deliveries
  pending, in order, until it is resumed;
- ``confirm_subscription`` and ``certificate``: the SubscribeURL and SigningCertURL of
  ``http`` targets speaking SNS's protocol (``lifecycle.sns_http``);
- ``targets``: every product's targets with how many deliveries are pending, delivered and
  failed (``pending_and_failed`` is the small read metrics take).

Failing deliveries on purpose is a fault rule of kind ``delivery-failure``
(``testbench.faults``). Listeners registered with ``on_change`` (the deliverer's ``wake``) run
after a redelivery or a resumption.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from marketmeter.catalog.model import CatalogSnapshot, Product
from marketmeter.lifecycle.messages import subscription_arn
from marketmeter.lifecycle.sns_http import SnsSigner, confirmation_answer
from marketmeter.metering.clock import WallClock
from marketmeter.operator.catalog import CatalogOperations, product_json
from marketmeter.operator.inputs import parse_count
from marketmeter.operator.lifecycle import delivery_json, event_json
from marketmeter.refusal import Refusal
from marketmeter.store.base import DeliveryQuery, Store, TargetCounts, TargetDelivery

__all__ = ["DeliveryOperations"]

_STATUSES = ("pending", "delivered", "failed")
_FILTERS = {"product", "target", "status", "buyer", "limit"}


def _delivery(found: TargetDelivery) -> dict[str, Any]:
    return {
        "target": found.delivery.url,
        "event": event_json(found.event),
        **{k: v for k, v in delivery_json(found.delivery).items() if k != "url"},
    }


def _product(snapshot: CatalogSnapshot, code: str) -> Product:
    product = snapshot.products.get(code)
    if product is None:
        raise Refusal.not_found("productCode", f"no product with product_code {code}")
    return product


class DeliveryOperations:
    """Deliveries of one store; pausing edits the catalog through ``catalog``."""

    def __init__(
        self,
        store: Store,
        catalog: CatalogOperations,
        signer: SnsSigner,
        wall: WallClock = time.time,
    ) -> None:
        self._signer = signer
        self._store = store
        self._catalog = catalog
        self._wall = wall
        self._listeners: list[Callable[[], None]] = []

    @property
    def signer(self) -> SnsSigner:
        return self._signer

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    async def deliveries(self, params: dict[str, str]) -> dict[str, Any]:
        unknown = set(params) - _FILTERS
        if unknown:
            raise Refusal(
                sorted(unknown)[0], f"unknown filter; known: {', '.join(sorted(_FILTERS))}"
            )
        status = params.get("status")
        if status is not None and status not in _STATUSES:
            raise Refusal("status", f"must be one of {', '.join(_STATUSES)}")
        query = DeliveryQuery(
            product_code=params.get("product"),
            target=params.get("target"),
            status=status,
            buyer_account_id=params.get("buyer"),
            limit=parse_count("limit", params.get("limit", "100"), 1, 10_000),
        )
        return {"deliveries": [_delivery(d) for d in await self._store.deliveries(query)]}

    async def redeliver(self, event: str, target: str) -> dict[str, Any]:
        found = await self._store.redeliver(event, target, self._wall())
        if found is None:
            raise Refusal.not_found("event", f"no delivery of event {event} to target {target}")
        self._changed()
        return _delivery(found)

    async def _set_paused(self, code: str, target: str, paused: bool) -> dict[str, Any]:
        product = _product(await self._catalog.snapshot(), code)
        entries = product_json(product)["notification_targets"]
        if not any(entry["name"] == target for entry in entries):
            raise Refusal.not_found("target", f"product {code} has no target named {target}")
        for entry in entries:
            if entry["name"] == target:
                entry["paused"] = paused
        await self._catalog.update_product(code, {"notification_targets": entries})
        if not paused:
            self._changed()
        return await self.target(code, target)

    async def pause(self, code: str, target: str) -> dict[str, Any]:
        return await self._set_paused(code, target, True)

    async def resume(self, code: str, target: str) -> dict[str, Any]:
        return await self._set_paused(code, target, False)

    async def confirm_subscription(self, params: dict[str, str]) -> bytes:
        """An SNS HTTP(S) endpoint visiting its SubscribeURL: SNS's XML answer."""
        if params.get("Action") != "ConfirmSubscription":
            raise Refusal("Action", "must be ConfirmSubscription")
        topic, token = params.get("TopicArn", ""), params.get("Token", "")
        if not await self._store.confirm_sns_subscription(topic, token, self._wall()):
            raise Refusal.not_found("Token", "no subscription with this token and topic")
        self._changed()
        return confirmation_answer(subscription_arn(topic), str(uuid.uuid4()))

    async def certificate(self) -> bytes:
        """The certificate SNS signatures verify with (PEM)."""
        return await self._signer.certificate_pem()

    async def pending_and_failed(self) -> list[TargetCounts]:
        """Deliveries per product and target (pending, delivered, failed): what metrics read."""
        return await self._store.delivery_counts()

    async def targets(self) -> dict[str, Any]:
        """Every product's targets (and webhook URLs, and targets since removed that still
        have deliveries) with their counts."""
        snapshot = await self._catalog.snapshot()
        counts = {(c.product_code, c.target): c for c in await self.pending_and_failed()}
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for code, product in sorted(snapshot.products.items()):
            names = [t.name for t in product.notification_targets]
            for name in [*product.notification_urls, *names]:
                if (code, name) not in seen:
                    seen.add((code, name))
                    rows.append(self._row(product, name, counts.get((code, name))))
        for (code, name), count in sorted(counts.items()):
            if (code, name) not in seen:
                rows.append(self._row(snapshot.products.get(code), name, count, code))
        return {"targets": rows}

    async def target(self, code: str, name: str) -> dict[str, Any]:
        for row in (await self.targets())["targets"]:
            if (row["productCode"], row["target"]) == (code, name):
                return dict(row)
        raise Refusal.not_found("target", f"product {code} has no target named {name}")

    @staticmethod
    def _row(
        product: Product | None, name: str, count: TargetCounts | None, code: str = ""
    ) -> dict[str, Any]:
        target = product.target(name) if product is not None else None
        return {
            "productCode": product.product_code if product is not None else code,
            "target": name,
            "kind": target.kind.value if target is not None else None,
            "notifications": [k.value for k in target.notifications] if target else [],
            "paused": target.paused if target is not None else False,
            "pending": count.pending if count else 0,
            "delivered": count.delivered if count else 0,
            "failed": count.failed if count else 0,
        }
