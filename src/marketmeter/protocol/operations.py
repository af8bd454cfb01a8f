"""The dispatch table: each operation's wire JSON → typed request → test bench → rules → wire
JSON.

Between the typed request and the rules sits the test bench (``protocol.hooks.CallChecks``,
which ``testbench.controls`` implements): a call
over its quota, or one a fault rule fires on, waits, fails with the rule's error, or has some of
its records held back: the rules validate the whole batch and answer those as
UnprocessedRecords, unbilled. Each handler also notes, for the journal, the call's product and
the verdict of every record, in request order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.types import BatchMeterUsageResult, Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.hooks import CallChecks, FaultDecision
from marketmeter.protocol.parse import (
    batch_meter_usage_request,
    meter_usage_request,
    register_usage_request,
    resolve_customer_request,
)
from marketmeter.protocol.services import Handler, RequestNotes, ServiceBinding
from marketmeter.servicemodel.spec import METERING

__all__ = [
    "UNPROCESSED",
    "NoChecks",
    "Operations",
    "apply_decision",
    "dispatch_table",
    "metering_service",
]

# The journal's verdict for a record held back by a fault rule.
UNPROCESSED = "Unprocessed"


@dataclass(frozen=True, slots=True)
class Operations:
    """The four operations' rules, wired to one store, clock and id generator."""

    batch_meter_usage: BatchMeterUsage
    meter_usage: MeterUsage
    resolve_customer: ResolveCustomer
    register_usage: RegisterUsage


async def apply_decision(decision: FaultDecision | None, notes: RequestNotes) -> frozenset[int]:
    """Carry out the bench's decision: wait, then raise its error; returns the positions of
    records to hold back."""
    if decision is None:
        return frozenset()
    notes.fault = decision.label
    if decision.latency_seconds > 0:
        await asyncio.sleep(decision.latency_seconds)
    if decision.error is not None:
        raise decision.error
    return decision.unprocessed


def _verdicts(result: BatchMeterUsageResult, held: frozenset[int], size: int) -> tuple[str, ...]:
    """Each record's verdict in request order: its status, or unprocessed if held back."""
    processed = iter(result.results)
    return tuple(UNPROCESSED if i in held else next(processed).status.value for i in range(size))


class NoChecks:
    """No bench: every call goes straight to the rules."""

    def check(
        self, operation: str, product_code: str | None, caller: Caller, batch_size: int = 1
    ) -> FaultDecision | None:
        return None


def dispatch_table(operations: Operations, bench: CallChecks | None = None) -> dict[str, Handler]:
    controls = bench or NoChecks()

    async def batch(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> dict[str, Any]:
        request = batch_meter_usage_request(params)
        notes.product_code = request.product_code
        decision = controls.check(
            "BatchMeterUsage", request.product_code, caller, len(request.records)
        )
        held = await apply_decision(decision, notes)
        result = await operations.batch_meter_usage(request, caller, held)
        notes.verdicts = _verdicts(result, held, len(request.records))
        return serialize.batch_meter_usage_result(result)

    async def meter(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> dict[str, Any]:
        request = meter_usage_request(params)
        notes.product_code = request.product_code
        await apply_decision(controls.check("MeterUsage", request.product_code, caller), notes)
        result = await operations.meter_usage(request, caller)
        notes.verdicts = ("Success",)
        return serialize.meter_usage_result(result)

    async def resolve(
        params: dict[str, Any], caller: Caller, notes: RequestNotes
    ) -> dict[str, Any]:
        request = resolve_customer_request(params)
        await apply_decision(controls.check("ResolveCustomer", None, caller), notes)
        result = await operations.resolve_customer(request, caller)
        notes.product_code = result.product_code
        return serialize.resolve_customer_result(result)

    async def register(
        params: dict[str, Any], caller: Caller, notes: RequestNotes
    ) -> dict[str, Any]:
        request = register_usage_request(params)
        notes.product_code = request.product_code
        await apply_decision(controls.check("RegisterUsage", request.product_code, caller), notes)
        result = await operations.register_usage(request, caller)
        return serialize.register_usage_result(result)

    return {
        "BatchMeterUsage": batch,
        "MeterUsage": meter,
        "ResolveCustomer": resolve,
        "RegisterUsage": register,
    }


def metering_service(operations: Operations, bench: CallChecks | None = None) -> ServiceBinding:
    """The Metering Service on the endpoint: its model and the four handlers."""
    return ServiceBinding(METERING, dispatch_table(operations, bench))
