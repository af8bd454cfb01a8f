"""The Entitlement Service on the endpoint: GetEntitlements' wire JSON → typed request → test
bench → rules → wire JSON, as one ``ServiceBinding``."""

from __future__ import annotations

from typing import Any

from marketmeter.entitlement.get_entitlements import GetEntitlements
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.hooks import CallChecks
from marketmeter.protocol.operations import NoChecks, apply_decision
from marketmeter.protocol.parse import get_entitlements_request
from marketmeter.protocol.services import RequestNotes, ServiceBinding
from marketmeter.servicemodel.spec import ENTITLEMENT

__all__ = ["entitlement_service"]


def entitlement_service(
    get_entitlements: GetEntitlements, bench: CallChecks | None = None
) -> ServiceBinding:
    controls = bench or NoChecks()

    async def handler(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> Any:
        request = get_entitlements_request(params)
        notes.product_code = request.product_code
        decision = controls.check("GetEntitlements", request.product_code, caller)
        await apply_decision(decision, notes)
        empty_page = decision is not None and decision.empty_page
        result = await get_entitlements(request, caller, empty_page=empty_page)
        return serialize.get_entitlements_result(result)

    return ServiceBinding(ENTITLEMENT, {"GetEntitlements": handler})
