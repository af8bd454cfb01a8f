"""The dispatch table: each operation's wire JSON → typed request → rules → wire JSON."""

from __future__ import annotations

from typing import Any

from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.endpoint import Handler
from marketmeter.protocol.parse import batch_meter_usage_request

__all__ = ["dispatch_table"]


def dispatch_table(batch_meter_usage: BatchMeterUsage) -> dict[str, Handler]:
    async def batch(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        result = await batch_meter_usage(batch_meter_usage_request(params), caller)
        return serialize.batch_meter_usage_result(result)

    return {"BatchMeterUsage": batch}
