"""The notification outbox through the admin API, under ``/_marketmeter/`` (test bench hooks):

- ``GET /deliveries`` (filters ``product``, ``target``, ``status``, ``buyer``, ``limit``):
  deliveries per target, oldest event first, each with its event and attempts;
- ``POST /deliveries/redeliver`` ``{"event": <event id or seq>, "target": <name or URL>}``:
  send it again;
- ``GET /targets``: every product's delivery targets with their pending, delivered and failed
  counts;
- ``POST /products/{product}/targets/{target}/pause|resume``;
- ``GET /sns?Action=ConfirmSubscription&TopicArn=…&Token=…`` (the SubscribeURL of an ``http``
  target speaking SNS's protocol, answered with SNS's XML) and ``GET /sns/certificate.pem`` (its
  SigningCertURL): both public, as the endpoint calls them without the admin token.

Failing deliveries on purpose is a fault rule of kind ``delivery-failure`` (``POST
/_marketmeter/faults``). Everything is ``operator.deliveries.DeliveryOperations``'s answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from marketmeter.admin.lifecycle_api import DeliveryAttemptView, LifecycleEventView
from marketmeter.admin.routing import Endpoint, answer, body, query
from marketmeter.operator.deliveries import DeliveryOperations
from marketmeter.refusal import Refusal

__all__ = ["DELIVERY_SCHEMA_MODELS", "delivery_endpoints"]


class TargetDeliveryView(BaseModel):
    """One event's delivery to one target."""

    target: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    nextAttemptAt: str | None
    deliveredAt: str | None
    history: list[DeliveryAttemptView]
    event: LifecycleEventView


class DeliveryList(BaseModel):
    deliveries: list[TargetDeliveryView]


class RedeliverRequest(BaseModel):
    event: str
    target: str


class TargetView(BaseModel):
    """A product's target (or webhook URL) and its deliveries per status."""

    productCode: str
    target: str
    kind: Literal["sns", "sqs", "eventbridge", "http"] | None
    notifications: list[Literal["subscription", "entitlement", "agreement"]]
    paused: bool
    pending: int
    delivered: int
    failed: int


class TargetList(BaseModel):
    targets: list[TargetView]


DELIVERY_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    TargetDeliveryView,
    DeliveryList,
    RedeliverRequest,
    TargetView,
    TargetList,
)


def delivery_endpoints(service: DeliveryOperations) -> list[Endpoint]:
    """The outbox's endpoints over ``service``."""

    async def list_deliveries(request: Request) -> Response:
        """Deliveries per target.
        ---
        summary: Deliveries of lifecycle notifications, oldest event first
        tags: [deliveries]
        parameters:
          - {name: product, in: query, schema: {type: string}}
          - {name: target, in: query, schema: {type: string}}
          - {name: status, in: query, schema: {type: string, enum: [pending, delivered, failed]}}
          - {name: buyer, in: query, schema: {type: string}}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
        responses:
          "200":
            description: Matching deliveries
            content: {application/json: {schema: {$ref: "#/components/schemas/DeliveryList"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        return answer(await service.deliveries(query(request)))

    async def redeliver(request: Request) -> Response:
        """Send one event to one target again.
        ---
        summary: Redeliver an event to a target (due now, a fresh attempt limit)
        tags: [deliveries]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/RedeliverRequest"}}}
        responses:
          "200":
            description: The delivery, pending again
            content:
              application/json: {schema: {$ref: "#/components/schemas/TargetDeliveryView"}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        given = await body(request, {})
        if not isinstance(given, dict):
            raise Refusal("body", "must be a JSON object")
        event, target = given.get("event"), given.get("target")
        if isinstance(event, int) and not isinstance(event, bool):
            event = str(event)
        if not isinstance(event, str) or not event:
            raise Refusal("event", "required: an event id or seq")
        if not isinstance(target, str) or not target:
            raise Refusal("target", "required: a target's name or webhook URL")
        return answer(await service.redeliver(event, target))

    async def list_targets(request: Request) -> Response:
        """Every product's targets with their counts.
        ---
        summary: Delivery targets with pending, delivered and failed deliveries
        tags: [deliveries]
        responses:
          "200":
            description: The targets
            content: {application/json: {schema: {$ref: "#/components/schemas/TargetList"}}}
        """
        return answer(await service.targets())

    def _names(request: Request) -> tuple[str, str]:
        return str(request.path_params["product"]), str(request.path_params["target"])

    async def pause(request: Request) -> Response:
        """Hold a target's deliveries.
        ---
        summary: Pause a target (its deliveries stay pending, in order)
        tags: [deliveries]
        parameters:
          - {name: product, in: path, required: true, schema: {type: string}}
          - {name: target, in: path, required: true, schema: {type: string}}
        responses:
          "200":
            description: The target
            content: {application/json: {schema: {$ref: "#/components/schemas/TargetView"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        return answer(await service.pause(*_names(request)))

    async def resume(request: Request) -> Response:
        """Deliver a paused target's deliveries again.
        ---
        summary: Resume a paused target
        tags: [deliveries]
        parameters:
          - {name: product, in: path, required: true, schema: {type: string}}
          - {name: target, in: path, required: true, schema: {type: string}}
        responses:
          "200":
            description: The target
            content: {application/json: {schema: {$ref: "#/components/schemas/TargetView"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        return answer(await service.resume(*_names(request)))

    async def confirm_subscription(request: Request) -> Response:
        """An SNS HTTP(S) endpoint confirming its subscription.
        ---
        summary: ConfirmSubscription (the SubscribeURL of a SubscriptionConfirmation)
        tags: [deliveries]
        security: []
        parameters:
          - name: Action
            in: query
            required: true
            schema: {type: string, enum: [ConfirmSubscription]}
          - {name: TopicArn, in: query, required: true, schema: {type: string}}
          - {name: Token, in: query, required: true, schema: {type: string}}
        responses:
          "200":
            description: SNS's ConfirmSubscriptionResponse
            content: {text/xml: {schema: {type: string}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        xml = await service.confirm_subscription(query(request))
        return Response(xml, media_type="text/xml")

    async def certificate(request: Request) -> Response:
        """The certificate SNS signatures verify with.
        ---
        summary: The SigningCertURL of SNS messages to http targets speaking SNS's protocol
        tags: [deliveries]
        security: []
        responses:
          "200":
            description: A PEM certificate
            content: {application/x-pem-file: {schema: {type: string}}}
        """
        return Response(await service.certificate(), media_type="application/x-pem-file")

    return [
        Endpoint("/sns", "GET", confirm_subscription),
        Endpoint("/sns/certificate.pem", "GET", certificate),
        Endpoint("/deliveries", "GET", list_deliveries),
        Endpoint("/deliveries/redeliver", "POST", redeliver),
        Endpoint("/targets", "GET", list_targets),
        Endpoint("/products/{product}/targets/{target}/pause", "POST", pause),
        Endpoint("/products/{product}/targets/{target}/resume", "POST", resume),
    ]
