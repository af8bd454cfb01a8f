"""Assembly only: builds the AWS endpoint and the admin API over one store, clock, id
generator and test bench, and routes between them by path (``/_marketmeter/...``, and
LocalStack's ``/_localstack/chaos/...`` fault routes, are the admin API, but
``/_marketmeter/ui/...``, the dashboard (``ui.app``); every other path is the AWS endpoint,
which AWS's JSON services serve at ``POST /``), and ``GET /metrics`` (Prometheus,
``observe.metrics``), which the admin API answers behind its guards. The endpoint serves the
Metering Service, the Entitlement Service and the Agreement API, one ``ServiceBinding`` each.

The app's lifespan also runs the subscription lifecycle's background tasks: the unsubscribe
ticker (``operator.ticker``) and the webhook deliverer (``lifecycle.webhooks``),
started before the admin API's startup and stopped before it closes the store."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from marketmeter.admin.api import ADMIN_PREFIX, CHAOS_PREFIX, METRICS_PATH, admin_app
from marketmeter.admin.browser_guard import HostPolicy
from marketmeter.agreements.service import AgreementApi
from marketmeter.config import Settings
from marketmeter.entitlement.get_entitlements import GetEntitlements
from marketmeter.lifecycle.sns_http import SnsHttp
from marketmeter.lifecycle.webhooks import DeliveryPolicy, WebhookDeliverer
from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.registration_tokens import TokenGenerator
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.signing_keys import KeyPairFactory, KeyRing, new_rsa_key_pair
from marketmeter.metering.simple_batch import SimpleBatch
from marketmeter.observe.calls import CallObservers
from marketmeter.observe.logs import CallLogLine, RequestLogLine
from marketmeter.observe.metrics import CONTENT_TYPE, Metrics
from marketmeter.operator.catalog import AccessKeyFactory, random_access_key
from marketmeter.operator.service import Operator
from marketmeter.operator.ticker import LifecycleTicker
from marketmeter.protocol.agreement_service import agreement_service
from marketmeter.protocol.auth import Authenticator, OpenAuth, StrictAuth
from marketmeter.protocol.batch_lane import BatchLane
from marketmeter.protocol.endpoint import AwsEndpoint, Receive, Scope, Send
from marketmeter.protocol.entitlement_operations import entitlement_service
from marketmeter.protocol.operations import Operations, metering_service
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.servicemodel.spec import service_regions
from marketmeter.store.base import Store
from marketmeter.testbench.controls import BenchControls, QuotaProfile
from marketmeter.testbench.journal import Journal
from marketmeter.ui.app import UI_PATH, dashboard_app

__all__ = ["ADMIN_PREFIX", "MarketmeterApp", "authenticator_for", "own_url"]

_ADMIN_PREFIXES = (ADMIN_PREFIX, CHAOS_PREFIX)


def own_url(settings: Settings) -> str:
    """Where SNS endpoints reach this server (SubscribeURL, SigningCertURL): its host and port
    (the loopback address for a wildcard host), or ``MARKETMETER_PUBLIC_URL``."""
    public = os.environ.get("MARKETMETER_PUBLIC_URL")
    if public:
        return public.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


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
        lanes: bool = True,
    ) -> None:
        """``lanes=False``: every request takes the general path (``protocol.batch_lane``'s
        comparison tests and ``bench.hot_path`` measure the lane against it)."""
        self.bench = bench or BenchControls(
            journal=Journal(settings.journal_entries, settings.journal_bytes),
            startup_quota=QuotaProfile(settings.quota),
        )
        self.store = store
        self.clock = clock
        self.metrics = Metrics()
        store.observe_writes(self.metrics)
        keys = KeyRing(store, clock, key_pairs)
        batch_meter_usage = BatchMeterUsage(store, clock, record_ids, settings.usage_window)
        operations = Operations(
            batch_meter_usage=batch_meter_usage,
            meter_usage=MeterUsage(
                store,
                clock,
                record_ids,
                settings.meter_usage_window,
                settings.dry_run_answer,
            ),
            resolve_customer=ResolveCustomer(
                store, clock, settings.token_ttl, settings.token_reuse
            ),
            register_usage=RegisterUsage(store, clock, keys),
        )
        services = (
            metering_service(operations, self.bench),
            entitlement_service(GetEntitlements(store, clock), self.bench),
            agreement_service(AgreementApi(store, clock), self.bench),
        )
        # what the endpoint tells of each call it answered (and, under serve --workers, what
        # the coordinator tells of each call a worker answered)
        self.observers = CallObservers(self.bench.journal, self.metrics, CallLogLine())
        self.endpoint = AwsEndpoint(
            services,
            authenticator_for(settings, store),
            request_ids,
            settings.max_body_bytes,
            self.observers,
            clock,
            settings.limits.processing_timeout,
            lanes={
                "BatchMeterUsage": BatchLane(
                    SimpleBatch(store, clock, record_ids, settings.usage_window),
                    batch_meter_usage,
                    self.bench,
                )
            }
            if lanes
            else None,
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
        self.ticker = LifecycleTicker(self.lifecycle)
        self.deliverer = WebhookDeliverer(
            store,
            delivery,
            fault=self.bench.faults.decide_delivery,
            sns_http=SnsHttp(store, self.operator.deliveries.signer, own_url(settings)),
        )
        self.lifecycle.on_commit(self.deliverer.wake)
        self.operator.deliveries.on_change(self.deliverer.wake)
        hosts = HostPolicy(settings.host, settings.allowed_hosts)
        self.admin = admin_app(
            self.operator, admin_token=settings.admin_token, hosts=hosts, metrics=self.scrape
        )
        self.admin_requests = RequestLogLine(self.admin)
        self.dashboard = dashboard_app(self.operator, admin_token=settings.admin_token, hosts=hosts)

    async def scrape(self) -> tuple[bytes, str]:
        """The metrics in Prometheus's text format, the outbox's counts read now."""
        return self.metrics.exposition(await self.store.delivery_counts()), CONTENT_TYPE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == METRICS_PATH:
            await self.admin_requests(scope, receive, send)
        elif scope["type"] == "http" and (
            scope["path"] == UI_PATH or scope["path"].startswith(UI_PATH + "/")
        ):
            await self.dashboard(scope, receive, send)
        elif scope["type"] == "http" and not scope["path"].startswith(_ADMIN_PREFIXES):
            await self.endpoint(scope, receive, send)
        elif scope["type"] == "http":
            await self.admin_requests(scope, receive, send)
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
