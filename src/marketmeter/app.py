"""Assembly only: builds the AWS endpoint and the admin API over one store, clock, id
generator and test bench, and routes between them by path (``/_marketmeter/...``, and
LocalStack's ``/_localstack/chaos/...`` fault routes, are the admin API; every other path is the
AWS endpoint, which AWS's JSON services serve at ``POST /``). The endpoint serves the Metering
Service, the Entitlement Service and the Agreement API, one ``ServiceBinding`` each.

The app's lifespan also runs the subscription lifecycle's background tasks: the unsubscribe
ticker (``operator.ticker``) and the webhook deliverer (``lifecycle.webhooks``),
started before the admin API's startup and stopped before it closes the store."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from marketmeter.admin.api import ADMIN_PREFIX, CHAOS_PREFIX, admin_app
from marketmeter.admin.browser_guard import HostPolicy
from marketmeter.agreements.service import AgreementApi
from marketmeter.config import Settings
from marketmeter.lifecycle.webhooks import DeliveryPolicy, WebhookDeliverer
from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.registration_tokens import TokenGenerator
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.signing_keys import KeyPairFactory, KeyRing, new_rsa_key_pair
from marketmeter.operator.catalog import AccessKeyFactory, random_access_key
from marketmeter.operator.service import Operator
from marketmeter.operator.ticker import UnsubscribeTicker
from marketmeter.protocol.agreement_service import agreement_service
from marketmeter.protocol.auth import Authenticator, OpenAuth, StrictAuth
from marketmeter.protocol.endpoint import AwsEndpoint, Receive, Scope, Send
from marketmeter.protocol.operations import Operations, metering_service
from marketmeter.protocol.services import ServiceBinding
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.servicemodel.spec import ENTITLEMENT, service_regions
from marketmeter.store.base import Store
from marketmeter.testbench.controls import BenchControls, QuotaProfile
from marketmeter.testbench.journal import Journal

__all__ = ["ADMIN_PREFIX", "MarketmeterApp", "authenticator_for"]

_ADMIN_PREFIXES = (ADMIN_PREFIX, CHAOS_PREFIX)


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
        access_keys: AccessKeyFactory = random_access_key,
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
        services = (
            metering_service(operations, self.bench),
            ServiceBinding(ENTITLEMENT, {}),
            agreement_service(AgreementApi(store, clock), self.bench),
        )
        self.endpoint = AwsEndpoint(
            services,
            authenticator_for(settings, store),
            request_ids,
            settings.max_body_bytes,
            self.bench.journal,
            clock,
            settings.limits.processing_timeout,
        )
        self.operator = Operator.build(
            store,
            clock,
            bench=self.bench,
            key_ring=keys,
            tokens=tokens,
            event_ids=event_ids,
            token_ttl=settings.token_ttl,
            unsubscribe_delay=settings.unsubscribe_delay,
            access_keys=access_keys,
        )
        self.lifecycle = self.operator.lifecycle
        self.ticker = UnsubscribeTicker(self.lifecycle)
        self.deliverer = WebhookDeliverer(store, delivery)
        self.lifecycle.on_commit(self.deliverer.wake)
        self.admin = admin_app(
            self.operator,
            admin_token=settings.admin_token,
            hosts=HostPolicy(settings.host, settings.allowed_hosts),
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
