"""Assembly only: builds the AWS endpoint and the admin API over one store, clock and id
generator, and routes between them by path (``/_marketmeter/...`` is the admin API; every
other path is the AWS endpoint, which AWS's JSON 1.1 services serve at ``POST /``)."""

from __future__ import annotations

from marketmeter.admin.api import admin_app
from marketmeter.config import Settings
from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.protocol.auth import OpenAuth
from marketmeter.protocol.endpoint import AwsEndpoint, Receive, Scope, Send
from marketmeter.protocol.operations import dispatch_table
from marketmeter.store.base import Store

__all__ = ["ADMIN_PREFIX", "MarketmeterApp"]

ADMIN_PREFIX = "/_marketmeter"


class MarketmeterApp:
    """The ASGI application served by ``marketmeter serve``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        record_ids: IdGenerator,
        request_ids: IdGenerator,
    ) -> None:
        rules = BatchMeterUsage(store, clock, record_ids, settings.usage_window)
        self.endpoint = AwsEndpoint(
            dispatch_table(rules), OpenAuth(), request_ids, settings.max_body_bytes
        )
        self.admin = admin_app(store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(ADMIN_PREFIX):
            await self.endpoint(scope, receive, send)
        else:
            await self.admin(scope, receive, send)
