"""Assembly only: builds the AWS endpoint and the admin API over one store, clock, id
generator and test bench, and routes between them by path (``/_marketmeter/...``, and
LocalStack's ``/_localstack/chaos/...`` fault routes, are the admin API; every other path is the
AWS endpoint, which AWS's JSON 1.1 services serve at ``POST /``).

The app's lifespan also runs the subscription lifecycle's background tasks: the unsubscribe
ticker (``notifications.ticker``) and the webhook deliverer (``notifications.delivery``),
started before the admin API's startup and stopped before it closes the store."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from marketmeter.admin.api import admin_app
from marketmeter.admin.lifecycle_api import LIFECYCLE_SCHEMA_MODELS, lifecycle_routes
from marketmeter.config import Settings
from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator, RandomIds
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.registration_tokens import RandomTokens, TokenGenerator
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.signing_keys import KeyPairFactory, KeyRing, new_rsa_key_pair
from marketmeter.notifications.delivery import DeliveryPolicy, WebhookDeliverer
from marketmeter.notifications.service import LifecycleService
from marketmeter.notifications.ticker import UnsubscribeTicker
from marketmeter.protocol.auth import Authenticator, OpenAuth, StrictAuth
from marketmeter.protocol.endpoint import AwsEndpoint, Receive, Scope, Send
from marketmeter.protocol.operations import Operations, dispatch_table
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.protocol.spec import service_regions
from marketmeter.store.base import Store
from marketmeter.testbench.controls import BenchControls, QuotaProfile
from marketmeter.testbench.journal import Journal

__all__ = ["ADMIN_PREFIX", "MarketmeterApp", "authenticator_for"]

ADMIN_PREFIX = "/_marketmeter"
_ADMIN_PREFIXES = (ADMIN_PREFIX, "/_localstack/chaos")


class MarketmeterApp:
    """The ASGI application served by ``marketmeter serve``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        record_ids: IdGenerator,
        request_ids: IdGenerator,
        tokens: TokenGenerator | None = None,
        key_pairs: KeyPairFactory = new_rsa_key_pair,
        bench: BenchControls | None = None,
        event_ids: IdGenerator | None = None,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.bench = bench or BenchControls(
            journal=Journal(settings.journal_entries, settings.journal_bytes),
            startup_quota=QuotaProfile(settings.quota),
        )
        keys = KeyRing(store, clock, key_pairs)
        operations = Operations(
            batch_meter_usage=BatchMeterUsage(store, clock, record_ids, settings.usage_window),
            meter_usage=MeterUsage(
                store,
                clock,
                record_ids,
                settings.meter_usage_window,
                settings.dry_run_answer,
            ),
            resolve_customer=ResolveCustomer(store, clock, settings.token_ttl),
            register_usage=RegisterUsage(store, clock, keys),
        )
        self.endpoint = AwsEndpoint(
            dispatch_table(operations, self.bench),
            authenticator_for(settings, store),
            request_ids,
            settings.max_body_bytes,
            self.bench.journal,
            clock,
            settings.limits.processing_timeout,
        )
        token_generator = tokens or RandomTokens()
        self.lifecycle = LifecycleService(
            store, clock, event_ids or RandomIds(), token_generator, settings.unsubscribe_delay
        )
        self.ticker = UnsubscribeTicker(self.lifecycle)
        self.deliverer = WebhookDeliverer(store, delivery)
        self.lifecycle.on_commit(self.deliverer.wake)
        self.admin = admin_app(
            store,
            clock,
            keys,
            token_generator,
            settings.token_ttl,
            self.bench,
            admin_token=settings.admin_token,
            extra_routes=lifecycle_routes(self.lifecycle, settings.token_ttl),
            extra_schema_models=LIFECYCLE_SCHEMA_MODELS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_ADMIN_PREFIXES):
            await self.endpoint(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.admin(scope, self._with_background_tasks(receive), send)
        else:
            await self.admin(scope, receive, send)

    def _with_background_tasks(self, receive: Receive) -> Receive:
        """``receive`` of the lifespan, starting the background tasks on startup and stopping
        them on shutdown, each before the admin API sees the message."""

        async def lifespan_receive() -> MutableMapping[str, Any]:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.ticker.start()
                self.deliverer.start()
            elif message["type"] == "lifespan.shutdown":
                await self.ticker.stop()
                await self.deliverer.stop()
            return message

        return lifespan_receive


def authenticator_for(settings: Settings, store: Store) -> Authenticator:
    """``--auth sigv4``: verify signatures against the catalog's keys; ``open``: accept all."""
    if settings.auth == "sigv4":
        return StrictAuth(store.catalog_snapshot, SigV4Verifier(regions=service_regions()))
    return OpenAuth()
