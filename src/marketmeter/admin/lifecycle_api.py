"""The subscription lifecycle through the admin API, under ``/_marketmeter/``.

- ``GET /agreements`` (filters ``product``, ``buyer``, ``state``, ``limit``),
  ``POST /agreements`` (subscribe a buyer), ``GET /agreements/{agreement}`` (an agreement id
  ``agmt-...`` or a LicenseArn);
- ``POST /agreements/{agreement}/unsubscribe|suspend|resubscribe|entitlement-update``;
- ``POST /subscribe-fail`` (a subscription that failed, e.g. no billing agreement);
- ``GET /events``: the event log (filters ``product``, ``buyer``, ``action``, ``since`` and
  ``until`` on the service clock, ``after`` a sequence number, ``limit``), each event with its
  webhook deliveries and their attempts.

Every transition runs on the server's service clock and commits with its messages
(``notifications.service.LifecycleService``); the answer carries the agreement after it and
the events it logged. An agreement's ``state`` is its state at the service clock's now (an
unsubscribe-pending agreement whose delay is over is ``unsubscribed`` at once). Errors are
``{"error", "field"}``: 400 for bad input, 404 for an unknown agreement or product, 409 for a
transition its state does not allow (the message names the state).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter.admin.catalog_api import json_object
from marketmeter.admin.inputs import AdminInputError, iso, parse_count, parse_time
from marketmeter.admin.registration import token_json
from marketmeter.catalog.model import Agreement, AgreementState, CatalogSnapshot
from marketmeter.notifications.messages import LifecycleAction, LifecycleEvent
from marketmeter.notifications.service import LifecycleService
from marketmeter.registration.lifecycle import Transition
from marketmeter.store.events_sql import DeliveryRecord, EventQuery, LoggedEvent

__all__ = [
    "LIFECYCLE_SCHEMA_MODELS",
    "AgreementList",
    "AgreementView",
    "DeliveryAttemptView",
    "DeliveryView",
    "EntitlementUpdateRequest",
    "EventList",
    "LifecycleEventView",
    "SubscribeFailRequest",
    "SubscribeRequest",
    "TransitionResult",
    "agreement_json",
    "event_json",
    "event_query",
    "lifecycle_routes",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscribeRequest(_Body):
    """Subscribe a buyer to a product, as when the buyer accepts an offer."""

    productCode: str = Field(min_length=1)
    buyerAccountId: str = Field(pattern=r"^[0-9]{12}$")
    freeTrial: bool = False
    offerId: str | None = Field(default=None, min_length=1)


class SubscribeFailRequest(_Body):
    """A subscription that failed (e.g. the buyer has no billing agreement)."""

    productCode: str = Field(min_length=1)
    buyerAccountId: str = Field(pattern=r"^[0-9]{12}$")
    freeTrial: bool = False
    offerId: str | None = Field(default=None, min_length=1)


class EntitlementUpdateRequest(_Body):
    """An entitlement change; ``freeTrial`` converts the agreement to or from a free trial."""

    freeTrial: bool | None = None


class AgreementView(BaseModel):
    """An agreement; ``state`` is its state at the service clock's now."""

    agreementId: str
    licenseArn: str
    productCode: str
    buyerAccountId: str
    customerIdentifier: str | None
    state: Literal["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"]
    storedState: Literal["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"]
    startsAt: str | None
    endsAt: str | None
    pendingSince: str | None
    freeTrial: bool
    offerId: str | None


class AgreementList(BaseModel):
    agreements: list[AgreementView]


class DeliveryAttemptView(BaseModel):
    """One POST to a webhook: the HTTP status, or the error (wall-clock time)."""

    attempt: int
    attemptedAt: str
    statusCode: int | None
    error: str | None


class DeliveryView(BaseModel):
    """An event's delivery to one URL: pending (next attempt at), delivered, or failed."""

    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    nextAttemptAt: str | None
    deliveredAt: str | None
    history: list[DeliveryAttemptView]


class LifecycleEventView(BaseModel):
    """A logged event: ``message`` is the JSON POSTed (SNS envelope or EventBridge event)."""

    seq: int
    eventId: str
    action: Literal[
        "subscribe-success",
        "subscribe-fail",
        "unsubscribe-pending",
        "unsubscribe-success",
        "suspend",
        "resubscribe",
        "entitlement-updated",
    ]
    productCode: str
    buyerAccountId: str
    licenseArn: str | None
    channel: Literal["sns", "eventbridge", "none"]
    topic: str
    occurredAt: str
    message: dict[str, Any]
    deliveries: list[DeliveryView]


class EventList(BaseModel):
    events: list[LifecycleEventView]


class TransitionResult(BaseModel):
    """What a transition did: the agreement after it (none for subscribe-fail), the events it
    logged, and for a subscription the registration token (SaaS products)."""

    action: str
    agreement: AgreementView | None
    events: list[LifecycleEventView]
    token: dict[str, Any] | None = None


LIFECYCLE_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    SubscribeRequest,
    SubscribeFailRequest,
    EntitlementUpdateRequest,
    AgreementView,
    AgreementList,
    DeliveryAttemptView,
    DeliveryView,
    LifecycleEventView,
    EventList,
    TransitionResult,
)


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
    }


def _delivery_json(delivery: DeliveryRecord) -> dict[str, Any]:
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
        "deliveries": [_delivery_json(d) for d in deliveries],
    }


async def _body(request: Request, model: type[ModelT]) -> ModelT:
    data = await json_object(request)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise AdminInputError(field, first["msg"]) from None


_EVENT_FILTERS = {"product", "buyer", "action", "since", "until", "after", "limit"}
_AGREEMENT_FILTERS = {"product", "buyer", "state", "limit"}


def _check_filters(params: dict[str, str], known: set[str]) -> None:
    for name in params:
        if name not in known:
            raise AdminInputError(name, f"unknown filter; known: {', '.join(sorted(known))}")


def event_query(params: dict[str, str]) -> EventQuery:
    """The event log's filters from a query string (``AdminInputError`` names a bad one)."""
    action = params.get("action")
    if action is not None and action not in {a.value for a in LifecycleAction}:
        known = ", ".join(a.value for a in LifecycleAction)
        raise AdminInputError("action", f"unknown action {action!r}; known: {known}")
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


def lifecycle_routes(service: LifecycleService, token_ttl: timedelta) -> list[Route]:
    """The lifecycle's routes over ``service``."""

    async def result(transition: Transition, status: int = 200) -> Response:
        catalog = await service.store.catalog_snapshot()
        now = service.now()
        agreement = transition.agreement
        body: dict[str, Any] = {
            "action": transition.action.value,
            "agreement": agreement_json(catalog, agreement, now) if agreement else None,
            "events": [event_json(event) for event in transition.events],
        }
        if transition.subscription is not None:
            token = transition.subscription.token
            body["token"] = token_json(token, token_ttl, now) if token else None
        return JSONResponse(body, status_code=status)

    def reference(request: Request) -> str:
        return str(request.path_params["agreement"])

    async def list_agreements(request: Request) -> Response:
        """List agreements.
        ---
        summary: List agreements (state as of the service clock's now)
        tags: [lifecycle]
        parameters:
          - {name: product, in: query, schema: {type: string}, description: Only this product}
          - {name: buyer, in: query, schema: {type: string}, description: Only this buyer account}
          - name: state
            in: query
            schema: {type: string, enum: [subscribed, unsubscribe-pending, unsubscribed, suspended]}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
        responses:
          "200":
            description: Matching agreements, by LicenseArn
            content: {application/json: {schema: {$ref: "#/components/schemas/AgreementList"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        params = dict(request.query_params)
        _check_filters(params, _AGREEMENT_FILTERS)
        state = params.get("state")
        if state is not None and state not in {s.value for s in AgreementState}:
            known = ", ".join(s.value for s in AgreementState)
            raise AdminInputError("state", f"unknown state {state!r}; known: {known}")
        limit = parse_count("limit", params.get("limit", "1000"), 1, 10_000)
        catalog = await service.store.catalog_snapshot()
        now = service.now()
        found = [
            agreement_json(catalog, agreement, now)
            for agreement in catalog.catalog.agreements
            if params.get("product") in (None, agreement.product_code)
            and params.get("buyer") in (None, agreement.buyer_account_id)
            and state in (None, agreement.effective_state(now).value)
        ]
        return JSONResponse({"agreements": found[:limit]})

    async def read_agreement(request: Request) -> Response:
        """Show one agreement.
        ---
        summary: Show an agreement, by agreement id (agmt-...) or LicenseArn
        tags: [lifecycle]
        responses:
          "200":
            description: The agreement
            content: {application/json: {schema: {$ref: "#/components/schemas/AgreementView"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        catalog = await service.store.catalog_snapshot()
        agreement = catalog.agreement(reference(request))
        if agreement is None:
            raise AdminInputError(
                "agreement", f"no agreement with id or LicenseArn {reference(request)!r}", 404
            )
        return JSONResponse(agreement_json(catalog, agreement, service.now()))

    async def subscribe(request: Request) -> Response:
        """Subscribe a buyer.
        ---
        summary: Subscribe a buyer to a product (subscribe-success)
        tags: [lifecycle]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/SubscribeRequest"}}}
        responses:
          "201":
            description: Subscribed; a new agreement emitted subscribe-success
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _body(request, SubscribeRequest)
        done = await service.subscribe(
            body.productCode, body.buyerAccountId, body.freeTrial, body.offerId
        )
        return await result(done, 201)

    async def subscribe_fail(request: Request) -> Response:
        """A failed subscription.
        ---
        summary: A subscription that failed, e.g. no billing agreement (subscribe-fail)
        tags: [lifecycle]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/SubscribeFailRequest"}}}
        responses:
          "200":
            description: Nothing created; subscribe-fail logged
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _body(request, SubscribeFailRequest)
        done = await service.subscribe_fail(
            body.productCode, body.buyerAccountId, body.freeTrial, body.offerId
        )
        return await result(done)

    async def unsubscribe(request: Request) -> Response:
        """Unsubscribe.
        ---
        summary: Unsubscribe (unsubscribe-pending now, unsubscribe-success after the delay)
        tags: [lifecycle]
        responses:
          "200":
            description: The agreement is unsubscribe-pending
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        return await result(await service.unsubscribe(reference(request)))

    async def suspend(request: Request) -> Response:
        """Suspend.
        ---
        summary: Suspend an agreement (no usage is billed while suspended)
        tags: [lifecycle]
        responses:
          "200":
            description: The agreement is suspended
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        return await result(await service.suspend(reference(request)))

    async def resubscribe(request: Request) -> Response:
        """Resubscribe.
        ---
        summary: Resubscribe a suspended, unsubscribed or unsubscribe-pending agreement
        tags: [lifecycle]
        responses:
          "200":
            description: The agreement is subscribed again
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        return await result(await service.resubscribe(reference(request)))

    async def update_entitlement(request: Request) -> Response:
        """Entitlement update.
        ---
        summary: The buyer's entitlement changed (entitlement-updated)
        tags: [lifecycle]
        requestBody:
          required: false
          content:
            application/json: {schema: {$ref: "#/components/schemas/EntitlementUpdateRequest"}}
        responses:
          "200":
            description: entitlement-updated logged
            content: {application/json: {schema: {$ref: "#/components/schemas/TransitionResult"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _body(request, EntitlementUpdateRequest)
        return await result(await service.update_entitlement(reference(request), body.freeTrial))

    async def list_events(request: Request) -> Response:
        """The event log.
        ---
        summary: Lifecycle events, oldest first, with their webhook deliveries
        tags: [lifecycle]
        parameters:
          - {name: product, in: query, schema: {type: string}}
          - {name: buyer, in: query, schema: {type: string}}
          - name: action
            in: query
            schema:
              type: string
              enum: [subscribe-success, subscribe-fail, unsubscribe-pending, unsubscribe-success,
                     suspend, resubscribe, entitlement-updated]
          - name: since
            in: query
            schema: {type: string}
            description: Service-clock time (ISO 8601 or epoch seconds), inclusive
          - name: until
            in: query
            schema: {type: string}
            description: Service-clock time (ISO 8601 or epoch seconds), exclusive
          - name: after
            in: query
            schema: {type: integer, minimum: 0}
            description: Only events after this seq
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
        responses:
          "200":
            description: Matching events
            content: {application/json: {schema: {$ref: "#/components/schemas/EventList"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        params = dict(request.query_params)
        _check_filters(params, _EVENT_FILTERS)
        logged: list[LoggedEvent] = await service.events(event_query(params))
        return JSONResponse(
            {"events": [event_json(item.event, item.deliveries) for item in logged]}
        )

    prefix = "/_marketmeter"
    table: list[tuple[str, str, Callable[[Request], Any]]] = [
        ("/agreements", "GET", list_agreements),
        ("/agreements", "POST", subscribe),
        ("/agreements/{agreement}", "GET", read_agreement),
        ("/agreements/{agreement}/unsubscribe", "POST", unsubscribe),
        ("/agreements/{agreement}/suspend", "POST", suspend),
        ("/agreements/{agreement}/resubscribe", "POST", resubscribe),
        ("/agreements/{agreement}/entitlement-update", "POST", update_entitlement),
        ("/subscribe-fail", "POST", subscribe_fail),
        ("/events", "GET", list_events),
    ]
    return [Route(prefix + path, handler, methods=[method]) for path, method, handler in table]
