"""The lifecycle's operator actions: list and show agreements, run their transitions
(subscribe, subscribe-fail, unsubscribe, suspend, resubscribe, entitlement update), read the
event log; with their JSON shapes.

Each transition is planned and applied, with its events, in one transaction on the service
clock. ``LifecycleService`` is what the admin API, the command line and the lifecycle ticker
use; after each commit it wakes the webhook deliverer (``on_commit``), so a message is POSTed
at once rather than at the deliverer's next poll. An agreement's ``state`` is its state at the
service clock's now (an unsubscribe-pending agreement whose delay is over is ``unsubscribed``
at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from marketmeter.catalog.model import (
    AcceptedConfiguration,
    Agreement,
    AgreementState,
    CatalogSnapshot,
    Entitlement,
)
from marketmeter.config import DEFAULT_TOKEN_TTL
from marketmeter.lifecycle import contract_ends
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.types import LifecycleAction, LifecycleEvent, Transition
from marketmeter.metering.clock import Clock, WallClock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.registration_tokens import TokenGenerator
from marketmeter.operator.inputs import check_known, iso, parse_count, parse_time, strict_object
from marketmeter.operator.tokens import token_json
from marketmeter.refusal import Refusal
from marketmeter.store.base import DeliveryRecord, EventQuery, LoggedEvent, Store

__all__ = [
    "ConfigurationInput",
    "EntitlementInput",
    "EntitlementUpdateRequest",
    "LifecycleService",
    "SubscribeFailRequest",
    "SubscribeRequest",
    "agreement_json",
    "configuration_of",
    "event_json",
    "event_query",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigurationInput(_Request):
    """What the buyer chooses on a contract offer's configurable upfront pricing term:
    ``selector`` the rate card (the contract's duration, e.g. ``P12M``), ``dimensions`` the
    quantity bought of each, ``autoRenew`` whether it renews (docs/subscription-lifecycle.md,
    "A contract's subscription")."""

    selector: str | None = Field(default=None, min_length=1, max_length=64)
    dimensions: (
        dict[
            Annotated[str, Field(min_length=1, max_length=1024)],
            Annotated[StrictInt, Field(ge=1, le=2**31 - 1)],
        ]
        | None
    ) = Field(default=None, min_length=1, max_length=1000)
    autoRenew: StrictBool | None = None

    def accepted(self) -> AcceptedConfiguration:
        dimensions = tuple((self.dimensions or {}).items())
        return AcceptedConfiguration(self.selector, dimensions, self.autoRenew)


def configuration_of(raw: Any) -> AcceptedConfiguration | None:
    """A subscription's ``configuration`` (``ConfigurationInput``), checked; ``None`` if
    absent."""
    if raw is None:
        return None
    try:
        return ConfigurationInput.model_validate(raw).accepted()
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(["configuration", *(str(part) for part in first["loc"])])
        raise Refusal(field, first["msg"]) from None


class SubscribeRequest(_Request):
    """Subscribe a buyer to a product, as when the buyer accepts an offer (and, when it is
    sold by contract, configures it)."""

    productCode: str = Field(min_length=1)
    buyerAccountId: str = Field(pattern=r"^[0-9]{12}$")
    freeTrial: bool = False
    offerId: str | None = Field(default=None, min_length=1)
    configuration: ConfigurationInput | None = None


class SubscribeFailRequest(_Request):
    """A subscription that failed (e.g. the buyer has no billing agreement)."""

    productCode: str = Field(min_length=1)
    buyerAccountId: str = Field(pattern=r"^[0-9]{12}$")
    freeTrial: bool = False
    offerId: str | None = Field(default=None, min_length=1)


class EntitlementInput(_Request):
    """What the agreement entitles its buyer to for one dimension: a whole number
    (IntegerValue), a fraction (DoubleValue), true/false (BooleanValue) or text
    (StringValue), until ``expiresAt`` (ISO 8601; default: the agreement's end)."""

    dimension: str = Field(min_length=1, max_length=1024)
    value: StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=1024)]
    expiresAt: str | None = None


class EntitlementUpdateRequest(_Request):
    """An entitlement change (upgrade, amendment, renewal): ``entitlements`` replace the
    agreement's, ``endsAt`` (ISO 8601) moves its end, ``freeTrial`` converts it to or from a
    free trial."""

    freeTrial: bool | None = None
    entitlements: list[EntitlementInput] | None = Field(default=None, max_length=1000)
    endsAt: str | None = None


ModelT = TypeVar("ModelT", bound=BaseModel)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else iso(epoch)


def agreement_json(catalog: CatalogSnapshot, agreement: Agreement, now: float) -> dict[str, Any]:
    buyer = catalog.buyers.get(agreement.buyer_account_id)
    return {
        "agreementId": agreement.agreement_id,
        "licenseArn": agreement.license_arn,
        "productCode": agreement.product_code,
        "buyerAccountId": agreement.buyer_account_id,
        "customerIdentifier": buyer.customer_identifier if buyer else None,
        "state": agreement.effective_state(now).value,
        "storedState": agreement.state.value,
        "startsAt": _iso(agreement.starts_at),
        "endsAt": _iso(agreement.ends_at),
        "pendingSince": _iso(agreement.pending_since),
        "freeTrial": agreement.free_trial,
        "offerId": agreement.offer_id,
        "entitlements": [
            {
                "dimension": item.dimension,
                "value": item.value,
                "expiresAt": _iso(agreement.expiration_of(item)),
            }
            for item in agreement.entitlements
        ],
    }


def delivery_json(delivery: DeliveryRecord) -> dict[str, Any]:
    """A delivery to one target (``url``: the target's name or webhook URL) with its
    attempts."""
    return {
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": _iso(delivery.next_attempt_at),
        "deliveredAt": _iso(delivery.delivered_at),
        "history": [
            {
                "attempt": attempt.attempt,
                "attemptedAt": iso(attempt.attempted_at),
                "statusCode": attempt.status_code,
                "error": attempt.error,
            }
            for attempt in delivery.history
        ],
    }


def event_json(
    event: LifecycleEvent, deliveries: tuple[DeliveryRecord, ...] = ()
) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "eventId": event.event_id,
        "action": event.action.value,
        "productCode": event.product_code,
        "buyerAccountId": event.buyer_account_id,
        "licenseArn": event.license_arn,
        "channel": event.channel.value,
        "topic": event.topic,
        "occurredAt": iso(event.occurred_at),
        "message": event.body,
        "deliveries": [delivery_json(d) for d in deliveries],
    }


_EVENT_FILTERS = {"product", "buyer", "action", "since", "until", "after", "limit"}
_AGREEMENT_FILTERS = {"product", "buyer", "state", "limit"}


def event_query(params: dict[str, str]) -> EventQuery:
    """The event log's filters from a query string (``Refusal`` names a bad one)."""
    action = params.get("action")
    if action is not None and action not in {a.value for a in LifecycleAction}:
        known = ", ".join(a.value for a in LifecycleAction)
        raise Refusal("action", f"unknown action {action!r}; known: {known}")
    since, until, after = params.get("since"), params.get("until"), params.get("after")
    return EventQuery(
        product_code=params.get("product"),
        buyer_account_id=params.get("buyer"),
        action=action,
        since=parse_time("since", since) if since is not None else None,
        until=parse_time("until", until) if until is not None else None,
        after=parse_count("after", after, 0, 2**62) if after is not None else None,
        limit=parse_count("limit", params.get("limit", "100"), 1, 10_000),
    )


def _request(body: Any, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(strict_object(body))
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise Refusal(field, first["msg"]) from None


class LifecycleService:
    """The lifecycle's transitions on one store, clock and id generator."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        tokens: TokenGenerator,
        unsubscribe_delay: timedelta,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        wall: WallClock = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.unsubscribe_delay = unsubscribe_delay
        self.token_ttl = token_ttl
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
        configuration: AcceptedConfiguration | None = None,
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
                configuration,
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

    async def announce_contract_ends(self, since: float, until: float) -> Transition:
        """Log (and deliver) the events of every contract end, and of every deprovisioning an
        hour for final records after one, that the clock passed after ``since`` up to
        ``until`` (``lifecycle.contract_ends``); those logged before are not logged again."""
        delay = self.unsubscribe_delay
        return await self._run(
            lambda catalog: contract_ends.announce_contract_ends(catalog, since, until, delay)
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
        self,
        reference: str,
        free_trial: bool | None = None,
        entitlements: tuple[Entitlement, ...] | None = None,
        ends_at: float | None = None,
    ) -> Transition:
        now = self.now()
        return await self._run(
            lambda catalog: lifecycle.update_entitlement(
                catalog, reference, now, self._ids, free_trial, entitlements, ends_at
            )
        )

    async def events(self, query: EventQuery) -> list[LoggedEvent]:
        return await self.store.events(query)

    # --- the operator's actions, answered as JSON ----------------------------------------------

    async def result(self, done: Transition) -> dict[str, Any]:
        """What a transition did: the agreement after it, its events, a subscription's
        token."""
        catalog = await self.store.catalog_snapshot()
        now = self.now()
        agreement = done.agreement
        body: dict[str, Any] = {
            "action": done.action.value,
            "agreement": agreement_json(catalog, agreement, now) if agreement else None,
            "events": [event_json(event) for event in done.events],
        }
        if done.subscription is not None:
            token = done.subscription.token
            body["token"] = token_json(token, self.token_ttl, now) if token else None
            body["subscription"] = {
                "buyerCreated": done.subscription.created_buyer,
                "agreementCreated": done.subscription.created_agreement,
            }
        return body

    async def agreements(self, params: dict[str, str]) -> dict[str, Any]:
        """Agreements matching ``product``, ``buyer``, ``state`` (at now), at most ``limit``."""
        check_known(params, _AGREEMENT_FILTERS, "filter")
        state = params.get("state")
        if state is not None and state not in {s.value for s in AgreementState}:
            known = ", ".join(s.value for s in AgreementState)
            raise Refusal("state", f"unknown state {state!r}; known: {known}")
        limit = parse_count("limit", params.get("limit", "1000"), 1, 10_000)
        catalog = await self.store.catalog_snapshot()
        now = self.now()
        found = [
            agreement_json(catalog, agreement, now)
            for agreement in catalog.catalog.agreements
            if params.get("product") in (None, agreement.product_code)
            and params.get("buyer") in (None, agreement.buyer_account_id)
            and state in (None, agreement.effective_state(now).value)
        ]
        return {"agreements": found[:limit]}

    async def agreement(self, reference: str) -> dict[str, Any]:
        """One agreement, by agreement id (``agmt-...``) or LicenseArn."""
        catalog = await self.store.catalog_snapshot()
        found = catalog.agreement(reference)
        if found is None:
            raise Refusal.not_found(
                "agreement", f"no agreement with id or LicenseArn {reference!r}"
            )
        return agreement_json(catalog, found, self.now())

    async def subscribe_request(self, body: Any) -> dict[str, Any]:
        asked = _request(body, SubscribeRequest)
        return await self.result(
            await self.subscribe(
                asked.productCode,
                asked.buyerAccountId,
                asked.freeTrial,
                asked.offerId,
                asked.configuration.accepted() if asked.configuration is not None else None,
            )
        )

    async def subscribe_fail_request(self, body: Any) -> dict[str, Any]:
        asked = _request(body, SubscribeFailRequest)
        return await self.result(
            await self.subscribe_fail(
                asked.productCode, asked.buyerAccountId, asked.freeTrial, asked.offerId
            )
        )

    async def transition(self, reference: str, verb: str, body: Any = None) -> dict[str, Any]:
        """``unsubscribe``, ``suspend``, ``resubscribe`` or ``entitlement-update`` the
        agreement ``reference``."""
        if verb == "unsubscribe":
            done = await self.unsubscribe(reference)
        elif verb == "suspend":
            done = await self.suspend(reference)
        elif verb == "resubscribe":
            done = await self.resubscribe(reference)
        elif verb == "entitlement-update":
            update = _request(body, EntitlementUpdateRequest)
            entitlements = (
                None
                if update.entitlements is None
                else tuple(
                    Entitlement(
                        item.dimension,
                        item.value,
                        None
                        if item.expiresAt is None
                        else parse_time(f"entitlements[{i}].expiresAt", item.expiresAt),
                    )
                    for i, item in enumerate(update.entitlements)
                )
            )
            ends_at = None if update.endsAt is None else parse_time("endsAt", update.endsAt)
            done = await self.update_entitlement(reference, update.freeTrial, entitlements, ends_at)
        else:
            raise Refusal.not_found("action", f"no transition {verb!r}")
        return await self.result(done)

    async def event_log(self, params: dict[str, str]) -> dict[str, Any]:
        """The event log: filters ``product``, ``buyer``, ``action``, ``since``, ``until``,
        ``after``, ``limit``."""
        check_known(params, _EVENT_FILTERS, "filter")
        logged = await self.events(event_query(params))
        return {"events": [event_json(item.event, item.deliveries) for item in logged]}
