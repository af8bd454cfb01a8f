"""Running the service: open the store, load the catalog, serve with uvicorn until SIGTERM.

SIGTERM and Ctrl-C stop accepting connections, let in-flight requests finish (their records
are committed before they are answered), then close the store, whose writer commits every job
already queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import resource
import secrets
import signal
import sys
from datetime import timedelta
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from marketmeter import __version__
from marketmeter.admin.browser_guard import HostPolicy
from marketmeter.app import MarketmeterApp
from marketmeter.catalog.directory import catalog_files, load_startup_files
from marketmeter.catalog.loader import CatalogError, load_catalog
from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.config import COLLECTOR_THRESHOLDS, ConnectionLimits, DryRunAnswer, Settings
from marketmeter.lifecycle.webhooks import DeliveryPolicy
from marketmeter.metering.clock import Clock, ServiceClock
from marketmeter.metering.ids import RandomIds
from marketmeter.metering.registration_tokens import RandomTokens, tokens_for_new_agreements
from marketmeter.observe.logs import configure as configure_logging
from marketmeter.operator.catalog import StreamedApply, document_digest
from marketmeter.protocol.guarded_http import guarded_uvicorn_config
from marketmeter.store.base import OperatorStore
from marketmeter.store.open import open_store

__all__ = [
    "WILDCARD_WARNING",
    "banner_lines",
    "build_service",
    "credentials_line",
    "demo_catalog_text",
    "load_startup_catalog",
    "prepared",
    "ready_text",
    "serve",
    "uvicorn_config",
]

WILDCARD_WARNING = (
    "  admin:   any Host accepted on a wildcard address: name this server's with "
    "--allowed-host to refuse DNS rebinding"
)


def demo_catalog_text() -> str:
    """The bundled demo catalog (YAML)."""
    return resources.files("marketmeter.catalog").joinpath("demo.yaml").read_text("utf-8")


def load_startup_catalog(
    store: OperatorStore, catalog: Path | None, clock: Clock, catalog_dir: Path | None = None
) -> str:
    """Apply ``catalog`` and the files of ``catalog_dir`` (``catalog.directory``), or the demo
    catalog when there are none and the store has no catalog yet; every new SaaS agreement gets
    a registration token (``marketmeter token list``). Files whose digest is the one the
    last apply recorded, with the catalog unchanged since, are recognised and not applied again.

    Returns a line describing what the service meters against.
    """
    paths = [catalog] if catalog is not None else []
    if catalog_dir is not None:
        paths.extend(catalog_files(catalog_dir))
    try:
        digest = document_digest(paths) if paths else None
    except OSError:
        digest = None  # load_startup_files names the problem
    if digest is not None and store.catalog_digest_now() == digest:
        version = store.catalog_snapshot_now().version
        described = _described(catalog, catalog_dir, paths)
        return f"{described}, unchanged since catalog version {version}: {_counts(store)}"
    if catalog is not None and not (catalog_dir is not None and paths[1:]):
        _apply_streamed(store, catalog, clock, digest)
        return f"{catalog}: {_counts(store)}"
    current = store.catalog_snapshot_now()
    loaded = load_startup_files(catalog, catalog_dir, current.catalog)
    if loaded is not None:
        parsed, source = loaded
    elif current.version == 0:
        parsed = load_catalog(demo_catalog_text(), source="demo catalog")
        source = "bundled demo catalog (marketmeter catalog demo prints it)"
        digest = None
    else:
        parsed = None
        source = "catalog already in the database"
    if parsed is not None:
        tokens = tokens_for_new_agreements(current, parsed, clock.now().timestamp(), RandomTokens())
        store.apply_catalog_chunks_now([(parsed, tokens)], digest)
    return f"{source}: {_counts(store)}"


def _apply_streamed(store: OperatorStore, catalog: Path, clock: Clock, digest: str | None) -> None:
    """``--catalog`` alone, read, checked and written as ``marketmeter catalog apply`` does:
    entry by entry, all in one transaction."""
    applied = StreamedApply(store.catalog_keys_now(), clock.now().timestamp(), RandomTokens())
    try:
        with catalog.open("rb") as stream:
            store.apply_catalog_chunks_now(applied.chunks(stream, str(catalog)), digest)
    except OSError as error:
        raise CatalogError(str(catalog), [f"cannot read the file: {error.strerror}"]) from error


def _described(catalog: Path | None, catalog_dir: Path | None, paths: list[Path]) -> str:
    """Where the start-up catalog comes from, as ``load_startup_files`` says it."""
    if catalog_dir is None or paths == [catalog]:
        return str(catalog)
    files = len(paths) - (catalog is not None)
    described = f"{catalog_dir} ({files} file{'' if files == 1 else 's'})"
    return f"{catalog} and {described}" if catalog is not None else described


def _counts(store: OperatorStore) -> str:
    c = store.catalog_snapshot_now().catalog
    return (
        f"{len(c.sellers)} seller(s), {len(c.products)} product(s), "
        f"{len(c.buyers)} buyer(s), {len(c.agreements)} agreement(s)"
    )


class _Server(uvicorn.Server):
    """uvicorn's server, printing where to point clients once the socket is bound."""

    banner: list[str]
    credentials: str = "any credentials, any region"

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        print(ready_text(f"http://{host}:{port}", self.banner, self.credentials), flush=True)


def ready_text(url: str, banner: list[str], credentials: str) -> str:
    """What ``serve`` prints once it answers at ``url``."""
    return "\n".join(
        [
            f"marketmeter {__version__}: AWS Marketplace Metering Service at {url}",
            *banner,
            f"Point AWS clients at it ({credentials}):",
            f"  export AWS_ENDPOINT_URL_MARKETPLACE_METERING={url}",
            f"  aws meteringmarketplace batch-meter-usage --endpoint-url {url} ...",
            f"  boto3.client('meteringmarketplace', endpoint_url='{url}')",
            f"Dashboard: {url}/_marketmeter/ui/",
            f"Ready: GET {url}/_marketmeter/health",
        ]
    )


def build_service(
    settings: Settings, catalog: CatalogSnapshot | None = None
) -> tuple[MarketmeterApp, OperatorStore, str]:
    """Open the ledger, load the start-up catalog and assemble the app on a ``ServiceClock``.
    Returns the app, its store (which the app closes at shutdown) and the catalog line.
    ``catalog``: the ledger's catalog as read already (``store.open.catalog_before_open``)."""
    store = open_store(settings.db, settings.synchronous, catalog=catalog)
    clock = ServiceClock()
    try:
        catalog_line = load_startup_catalog(store, settings.catalog, clock, settings.catalog_dir)
    except BaseException:
        store.close_now()
        raise
    delivery = DeliveryPolicy.from_environment(os.environ)
    app = MarketmeterApp(settings, store, clock, RandomIds(), RandomIds(), delivery=delivery)
    return app, store, catalog_line


def uvicorn_config(
    app: MarketmeterApp, settings: Settings, host: str, port: int, loop: str = "auto"
) -> uvicorn.Config:
    """uvicorn serving ``app`` within ``settings.limits`` (``protocol.guarded_http``)."""
    return guarded_uvicorn_config(app, settings.limits, host, port, loop)


def _allow_file_descriptors(connections: int) -> None:
    """Raise the soft open-files limit (up to the hard one) so ``connections`` sockets fit
    beside the database's and the log's descriptors."""
    wanted = connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        if ceiling < wanted:
            logging.getLogger(__name__).warning(
                "open-files limit %d is below --max-connections %d + 64", ceiling, connections
            )


def prepared(settings: Settings) -> tuple[Settings, bool]:
    """``settings`` with a generated admin token if strict mode has none (and whether it was
    generated); logging configured, the open-files limit raised for it and the garbage
    collector's thresholds set (``config.COLLECTOR_THRESHOLDS``)."""
    generated_token = settings.auth == "sigv4" and settings.admin_token is None
    if generated_token:
        settings = dataclasses.replace(settings, admin_token=secrets.token_urlsafe(24))
    configure_logging(settings.log_format, settings.log_level, [settings.admin_token or ""])
    _allow_file_descriptors(settings.limits.max_connections)
    gc.set_threshold(*COLLECTOR_THRESHOLDS)  # a worker forked from this process inherits them
    return settings, generated_token


def credentials_line(settings: Settings) -> str:
    if settings.auth == "sigv4":
        return "a catalog access key of the right kind, a region of the service"
    return _Server.credentials


def banner_lines(
    settings: Settings, store: OperatorStore, catalog_line: str, generated_token: bool
) -> list[str]:
    """The lines ``serve`` prints about its ledger, catalog, auth and settings."""
    banner = [
        f"  ledger:  {store.describe()}",
        f"  catalog: {catalog_line}",
        f"  auth:    {_auth_line(settings, generated_token)}",
        f"  window:  BatchMeterUsage {settings.usage_window.describe()};",
        f"           MeterUsage {settings.meter_usage_window.describe()}; a DryRun that "
        f"would succeed answers {_dry_run_line(settings)}",
        f"  tokens:  registration tokens expire after {_duration(settings.token_ttl)} "
        "(marketmeter token list)",
        "  clock:   wall time (move it: marketmeter clock set|advance|reset)",
        f"  lifecycle: unsubscribe-success {_duration(settings.unsubscribe_delay)} after "
        "unsubscribe-pending (service clock); notifications to each product's "
        "notification_urls (marketmeter agreements|events)",
        f"  bench:   quota {settings.quota}; journal of the last {settings.journal_entries} calls, "
        f"{_size(settings.journal_bytes)} of bodies (marketmeter faults|journal|reset|snapshot)",
        f"  limits:  {_limits_line(settings.limits)}",
    ]
    if settings.workers > 1:
        banner.append(
            f"  workers: {settings.workers} processes answering HTTP, one writing the ledger"
        )
    if HostPolicy(settings.host, settings.allowed_hosts).names is None:
        banner.append(WILDCARD_WARNING)
    return banner


def serve(settings: Settings) -> None:
    """Serve until stopped. Exits non-zero if the port or the database cannot be used."""
    settings, generated_token = prepared(settings)
    app, store, catalog_line = build_service(settings)
    server = _Server(uvicorn_config(app, settings, settings.host, settings.port))
    server.credentials = credentials_line(settings)
    server.banner = banner_lines(settings, store, catalog_line, generated_token)
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal into the
    # handler that was installed before it: make that one a no-op so a drained stop exits 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _ignore_signal)
    asyncio.run(server.serve())
    if not server.started:
        sys.exit(1)


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    return None


def _size(count: int) -> str:
    """A byte count as the banner shows it: whole MiB or KiB where exact, else bytes."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


def _auth_line(settings: Settings, generated_token: bool) -> str:
    if settings.auth == "open":
        line = "open (requests accepted signed or unsigned)"
    else:
        line = "sigv4 (every request's signature verified against the catalog's access keys)"
    if generated_token:
        # printed once, on the terminal that started the server; never logged
        line += f"\n           admin API token (generated): {settings.admin_token}"
    elif settings.admin_token is not None:
        line += "\n           admin API: Authorization: Bearer <the --admin-token given>"
    return line


def _dry_run_line(settings: Settings) -> str:
    if settings.dry_run_answer is DryRunAnswer.ERROR:
        return "the DryRunOperation error (--dry-run-answer error)"
    return 'HTTP 200 {"MeteringRecordId": "DryRunOperation"}'


def _limits_line(limits: ConnectionLimits) -> str:
    return (
        f"{limits.max_connections} connections; headers {limits.max_header_bytes} bytes, "
        f"{limits.max_headers} fields; timeouts (s): idle {limits.idle_timeout}, headers "
        f"{limits.header_timeout}, request {limits.request_timeout}, processing "
        f"{limits.processing_timeout}"
    )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 3600:
        return "1 hour"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds == 1:
        return "1 second"
    return f"{seconds} seconds"
