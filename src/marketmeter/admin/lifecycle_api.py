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
(``operator.lifecycle.LifecycleService``, which decides everything these handlers answer); the
answer carries the agreement after it and the events it logged. An agreement's ``state`` is
its state at the service clock's now (an unsubscribe-pending agreement whose delay is over is
``unsubscribed`` at once). Errors are
``{"error", "field"}``: 400 for bad input, 404 for an unknown agreement or product, 409 for a
transition its state does not allow (the message names the state).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from marketmeter.admin.routing import Endpoint, answer, body, query
from marketmeter.operator.lifecycle import (
    EntitlementUpdateRequest,
    LifecycleService,
    SubscribeFailRequest,
    SubscribeRequest,
)

__all__ = [
    "LIFECYCLE_SCHEMA_MODELS",
    "AgreementList",
    "AgreementView",
    "DeliveryAttemptView",
    "DeliveryView",
    "EntitlementView",
    "EventList",
    "LifecycleEventView",
    "SubscriptionOutcome",
    "TransitionResult",
    "lifecycle_endpoints",
]


class EntitlementView(BaseModel):
    """What the agreement entitles its buyer to for one dimension, until ``expiresAt``
    (``null``: no end)."""

    dimension: str
    value: bool | int | float | str
    expiresAt: str | None


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
    entitlements: list[EntitlementView]


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


class SubscriptionOutcome(BaseModel):
    """What a subscription created: the buyer (unknown before), the agreement (none billed)."""

    buyerCreated: bool
    agreementCreated: bool


class TransitionResult(BaseModel):
    """What a transition did: the agreement after it (none for subscribe-fail), the events it
    logged, and for a subscription the registration token (SaaS products) and what it
    created."""

    action: str
    agreement: AgreementView | None
    events: list[LifecycleEventView]
    token: dict[str, Any] | None = None
    subscription: SubscriptionOutcome | None = None


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
    SubscriptionOutcome,
    TransitionResult,
)


def lifecycle_endpoints(service: LifecycleService) -> list[Endpoint]:
    """The lifecycle's endpoints over ``service``."""

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
        return answer(await service.agreements(query(request)))

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
        return answer(await service.agreement(reference(request)))

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
        return answer(await service.subscribe_request(await body(request, {})), 201)

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
        return answer(await service.subscribe_fail_request(await body(request, {})))

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
        return answer(await service.transition(reference(request), "unsubscribe"))

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
        return answer(await service.transition(reference(request), "suspend"))

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
        return answer(await service.transition(reference(request), "resubscribe"))

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
        given = await body(request, {})
        return answer(await service.transition(reference(request), "entitlement-update", given))

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
            schema: {type: integer, minimum: 0, maximum: 4611686018427387904}
            description: Only events after this seq
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
        responses:
          "200":
            description: Matching events
            content: {application/json: {schema: {$ref: "#/components/schemas/EventList"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        return answer(await service.event_log(query(request)))

    return [
        Endpoint("/agreements", "GET", list_agreements),
        Endpoint("/agreements", "POST", subscribe),
        Endpoint("/agreements/{agreement}", "GET", read_agreement),
        Endpoint("/agreements/{agreement}/unsubscribe", "POST", unsubscribe),
        Endpoint("/agreements/{agreement}/suspend", "POST", suspend),
        Endpoint("/agreements/{agreement}/resubscribe", "POST", resubscribe),
        Endpoint("/agreements/{agreement}/entitlement-update", "POST", update_entitlement),
        Endpoint("/subscribe-fail", "POST", subscribe_fail),
        Endpoint("/events", "GET", list_events),
    ]
