"""The Agreement API on the endpoint (``marketplace-agreement``, AWS JSON 1.0,
``AWSMPCommerceService_v20200301``): the operations a seller calls, each a handler over
``agreements.service.AgreementApi`` (docs/agreement-api.md).

Errors carry the model's members beyond ``message`` (``requestId``, ``reason``, ``resourceId``,
``resourceType``), written by ``error_body``. Fault rules and quotas of the test bench apply
by operation name (and product), before the rules run; the journal notes the product of a
call naming an agreement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from marketmeter.agreements.service import AgreementApi
from marketmeter.errors import AwsError
from marketmeter.metering.types import Caller
from marketmeter.protocol.hooks import CallChecks
from marketmeter.protocol.operations import NoChecks, apply_decision
from marketmeter.protocol.services import Handler, RequestNotes, ServiceBinding
from marketmeter.servicemodel.spec import AGREEMENT

__all__ = ["SERVED_OPERATIONS", "agreement_service", "error_body"]

Operation = Callable[[dict[str, Any], Caller], Awaitable[dict[str, Any]]]


def error_body(failure: AwsError, request_id: str) -> bytes:
    """``{"__type", "requestId", "message", ...}`` with the error shape's other members: every
    error shape of the model has ``requestId``, the request's ``x-amzn-RequestId``, which the
    SDKs read into the exception (boto3's ``response["requestId"]``)."""
    body = {"__type": failure.code, "requestId": request_id, "message": failure.message}
    return orjson.dumps({**body, **failure.members()})


def _handler(name: str, operation: Operation, api: AgreementApi, controls: CallChecks) -> Handler:
    """The operation behind the test bench (fault rules and quotas by operation name and,
    for a call naming an agreement, its product, which the journal notes too)."""

    async def handle(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> dict[str, Any]:
        agreement_id = params.get("agreementId")
        if isinstance(agreement_id, str):
            notes.product_code = await api.product_of(agreement_id)
        await apply_decision(controls.check(name, notes.product_code, caller), notes)
        return await operation(params, caller)

    return handle


def _handlers(api: AgreementApi, controls: CallChecks) -> dict[str, Handler]:
    operations: dict[str, Operation] = {
        "DescribeAgreement": api.describe_agreement,
        "GetAgreementTerms": api.get_agreement_terms,
        "SearchAgreements": api.search_agreements,
        "GetAgreementEntitlements": api.get_agreement_entitlements,
        "GetAgreementContacts": api.get_agreement_contacts,
    }
    return {
        name: _handler(name, operation, api, controls) for name, operation in operations.items()
    }


# The operations served; the model's others are answered UnknownOperationException
# (docs/agreement-api.md, "What is served").
SERVED_OPERATIONS = (
    "DescribeAgreement",
    "GetAgreementTerms",
    "SearchAgreements",
    "GetAgreementEntitlements",
    "GetAgreementContacts",
)


def agreement_service(api: AgreementApi, bench: CallChecks | None = None) -> ServiceBinding:
    """The Agreement API's binding: its model, the handlers (behind ``bench``), its errors'
    body."""
    return ServiceBinding(AGREEMENT, _handlers(api, bench or NoChecks()), error_body)
