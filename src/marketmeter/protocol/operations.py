"""The dispatch table: each operation's wire JSON → typed request → rules → wire JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.endpoint import Handler
from marketmeter.protocol.parse import (
    batch_meter_usage_request,
    meter_usage_request,
    register_usage_request,
    resolve_customer_request,
)

__all__ = ["Operations", "dispatch_table"]


@dataclass(frozen=True, slots=True)
class Operations:
    """The four operations' rules, wired to one store, clock and id generator."""

    batch_meter_usage: BatchMeterUsage
    meter_usage: MeterUsage
    resolve_customer: ResolveCustomer
    register_usage: RegisterUsage


def dispatch_table(operations: Operations) -> dict[str, Handler]:
    async def batch(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        result = await operations.batch_meter_usage(batch_meter_usage_request(params), caller)
        return serialize.batch_meter_usage_result(result)

    async def meter(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        result = await operations.meter_usage(meter_usage_request(params), caller)
        return serialize.meter_usage_result(result)

    async def resolve(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        result = await operations.resolve_customer(resolve_customer_request(params), caller)
        return serialize.resolve_customer_result(result)

    async def register(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        result = await operations.register_usage(register_usage_request(params), caller)
        return serialize.register_usage_result(result)

    return {
        "BatchMeterUsage": batch,
        "MeterUsage": meter,
        "ResolveCustomer": resolve,
        "RegisterUsage": register,
    }
