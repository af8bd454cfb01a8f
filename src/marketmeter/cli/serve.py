"""``marketmeter serve``: the AWS endpoint and the admin API, with every option of the
service (``config.Settings``); the options here are that object's fields, with their defaults
from it."""

from __future__ import annotations

import errno
import os
import re
import socket
from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Literal

import click

from marketmeter.cli.connection import (
    ADMIN_TOKEN_ENV,
    ADMIN_TOKEN_FILE_ENV,
    db_option,
    resolve_admin_token,
)
from marketmeter.cli.ledger_file import LedgerFile
from marketmeter.config import (
    ConnectionLimits,
    DryRunAnswer,
    Settings,
    TokenReuse,
)
from marketmeter.metering.windows import WindowPolicy
from marketmeter.observe.single_process import prepare as prepare_metrics

__all__ = ["serve"]

_LEVELS: dict[str, Literal["debug", "info", "warning", "error"]] = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "error": "error",
}

# Every option's default is the setting's own (``config.Settings``), stated once there.
_DEFAULTS = Settings()


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


# serve's limit options: one per ConnectionLimits field (docs/reliability.md, "Limits")
_LIMIT_HELP = {
    "max_connections": "Open connections; a request on one more is answered 503 "
    "ServiceUnavailableException.",
    "max_header_bytes": "Request line and headers together; more: 431 "
    "RequestHeaderFieldsTooLargeException.",
    "max_headers": "Header fields in one request; more: 431 RequestHeaderFieldsTooLargeException.",
    "idle_timeout": "Seconds a connection may stay open with no request in progress.",
    "header_timeout": "Seconds from a request's first byte to the end of its headers; later: "
    "408 RequestTimeoutException.",
    "request_timeout": "Seconds from a request's first byte to the end of its body; later: 408 "
    "RequestTimeoutException, and nothing of it is processed.",
    "processing_timeout": "Seconds a received call may take to be answered; later: 500 "
    "InternalServiceErrorException (retry-safe). Injected latency counts.",
}


# a host name, an IPv4 address or a bracketed IPv6 address, with an optional port
_HOST = re.compile(
    r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)


def _host_names(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        if not _HOST.fullmatch(value):
            raise click.BadParameter(
                f"{value!r} is not a host name or address (e.g. marketmeter, mm.internal)"
            )
    return values


def _limit_options(command: Callable[..., None]) -> Callable[..., None]:
    defaults = _DEFAULTS.limits
    for name in reversed(fields(ConnectionLimits)):
        option = click.option(
            "--" + name.name.replace("_", "-"),
            envvar="MARKETMETER_" + name.name.upper(),
            show_envvar=True,
            type=click.IntRange(1),
            default=getattr(defaults, name.name),
            show_default=True,
            help=_LIMIT_HELP[name.name],
        )
        command = option(command)
    return command


@click.command()
@click.option(
    "--host",
    envvar="MARKETMETER_HOST",
    show_envvar=True,
    default=_DEFAULTS.host,
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    envvar="MARKETMETER_PORT",
    show_envvar=True,
    default=_DEFAULTS.port,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0: any free port, printed at start).",
)
@db_option
@click.option(
    "--catalog",
    envvar="MARKETMETER_CATALOG",
    show_envvar=True,
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Catalog YAML to apply at start. Default: the bundled demo catalog, applied only "
    "if the database has no catalog yet.",
)
@click.option(
    "--catalog-dir",
    envvar="MARKETMETER_CATALOG_DIR",
    show_envvar=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="A directory whose *.yaml, *.yml and *.json files are applied at start after "
    "--catalog, in name order, all or nothing (the container convention for seeding).",
)
@click.option(
    "--window",
    envvar="MARKETMETER_WINDOW",
    show_envvar=True,
    type=click.Choice([p.value for p in WindowPolicy]),
    default=_DEFAULTS.window.value,
    show_default=True,
    help="Usage timestamp window: 6h (seed documents) or 24h-month-end (AWS today).",
)
@click.option(
    "--future-skew",
    envvar="MARKETMETER_FUTURE_SKEW",
    show_envvar=True,
    type=click.IntRange(0),
    default=_seconds(_DEFAULTS.future_skew),
    show_default=True,
    help="Seconds a usage timestamp may lie in the future.",
)
@click.option(
    "--meter-usage-window",
    envvar="MARKETMETER_METER_USAGE_WINDOW",
    show_envvar=True,
    type=click.IntRange(1),
    default=_seconds(_DEFAULTS.meter_usage_max_age),
    show_default=True,
    help="MeterUsage: seconds in the past a usage timestamp may lie (less than).",
)
@click.option(
    "--dry-run-answer",
    envvar="MARKETMETER_DRY_RUN_ANSWER",
    show_envvar=True,
    type=click.Choice([a.value for a in DryRunAnswer]),
    default=_DEFAULTS.dry_run_answer.value,
    show_default=True,
    help="MeterUsage DryRun that would succeed: success answers HTTP 200 "
    '{"MeteringRecordId": "DryRunOperation"} as AWS does; error answers the 400 '
    "DryRunOperation error (docs/meter-usage.md).",
)
@click.option(
    "--token-reuse",
    envvar="MARKETMETER_TOKEN_REUSE",
    show_envvar=True,
    type=click.Choice([r.value for r in TokenReuse]),
    default=_DEFAULTS.token_reuse.value,
    show_default=True,
    help="ResolveCustomer of a token resolved before: reusable answers the same until it "
    "expires, as AWS documents; single-use answers ExpiredTokenException "
    "(docs/saas-registration.md).",
)
@click.option(
    "--token-ttl",
    envvar="MARKETMETER_TOKEN_TTL",
    show_envvar=True,
    type=click.IntRange(1),
    default=_seconds(_DEFAULTS.token_ttl),
    show_default=True,
    help="Seconds a SaaS registration token resolves after it was issued (service clock).",
)
@click.option(
    "--sync",
    "synchronous",
    envvar="MARKETMETER_SYNC",
    show_envvar=True,
    type=click.Choice(["full", "normal"]),
    default=_DEFAULTS.synchronous,
    show_default=True,
    help="SQLite synchronous mode: full survives power loss, normal only process crashes.",
)
@click.option(
    "--quota",
    envvar="MARKETMETER_QUOTA",
    show_envvar=True,
    type=click.Choice(["off", "aws"]),
    default=_DEFAULTS.quota,
    show_default=True,
    help="Throttle per account at AWS's published rates (10/s BatchMeterUsage and MeterUsage, "
    "5/s RegisterUsage). Change it live: marketmeter faults quota.",
)
@click.option(
    "--journal-size",
    envvar="MARKETMETER_JOURNAL_SIZE",
    show_envvar=True,
    type=click.IntRange(0),
    default=_DEFAULTS.journal_entries,
    show_default=True,
    help="Calls kept in the request journal (0: no journal).",
)
@click.option(
    "--journal-bytes",
    envvar="MARKETMETER_JOURNAL_BYTES",
    show_envvar=True,
    type=click.IntRange(0),
    default=_DEFAULTS.journal_bytes,
    show_default=True,
    help="Bytes of request and response bodies the journal keeps, the oldest calls' going first "
    "(it holds about 1.5 times this in memory).",
)
@click.option(
    "--auth",
    envvar="MARKETMETER_AUTH",
    show_envvar=True,
    type=click.Choice(["open", "sigv4"]),
    default=_DEFAULTS.auth,
    show_default=True,
    help="open: accept any request, signed or not (local testing); sigv4: verify every "
    "request's Signature Version 4 against the catalog's access keys (docs/strict-auth.md).",
)
@click.option(
    "--admin-token",
    envvar=ADMIN_TOKEN_ENV,
    show_envvar=True,
    default=None,
    help="The bearer token the admin API (/_marketmeter/) requires, in either auth mode. "
    "Given here it is visible in the process list: prefer the environment variable "
    f"{ADMIN_TOKEN_ENV} or --admin-token-file. With --auth sigv4 and no token, one is "
    "generated and printed once.",
)
@click.option(
    "--admin-token-file",
    envvar=ADMIN_TOKEN_FILE_ENV,
    show_envvar=True,
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the admin token from this file (its first line).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    envvar="MARKETMETER_ALLOWED_HOST",
    show_envvar=True,
    multiple=True,
    callback=_host_names,
    help="A name the admin API answers to beside 127.0.0.1, localhost, [::1] and --host "
    "(repeatable; in the environment, space-separated): the service name a "
    "container or compose setup reaches it by. With --host 0.0.0.0 and none given, any "
    "Host is accepted (docs/reliability.md, Security model).",
)
@click.option(
    "--unsubscribe-delay",
    envvar="MARKETMETER_UNSUBSCRIBE_DELAY",
    show_envvar=True,
    type=click.IntRange(0),
    default=_seconds(_DEFAULTS.unsubscribe_delay),
    show_default=True,
    help="Seconds (service clock) between unsubscribe-pending and unsubscribe-success.",
)
@click.option(
    "--log-format",
    envvar="MARKETMETER_LOG_FORMAT",
    show_envvar=True,
    type=click.Choice(["text", "json"]),
    default=_DEFAULTS.log_format,
    show_default=True,
    help="Log lines on stderr as text or as JSON objects, one per line (docs/observability.md).",
)
@click.option(
    "--log-level",
    envvar="MARKETMETER_LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=_DEFAULTS.log_level,
    show_default=True,
    help="The least severe level logged; info adds one line per AWS call.",
)
@click.option(
    "--workers",
    envvar="MARKETMETER_WORKERS",
    show_envvar=True,
    type=click.IntRange(1, 64),
    default=None,
    help="Processes answering HTTP, in front of one that writes the ledger and holds the "
    "test bench (docs/performance.md, Several processes). Default: the number of CPU "
    "cores; 1: one process does everything.",
)
@_limit_options
def serve(
    host: str,
    port: int,
    db: str,
    catalog: Path | None,
    catalog_dir: Path | None,
    window: str,
    future_skew: int,
    meter_usage_window: int,
    dry_run_answer: str,
    token_ttl: int,
    token_reuse: str,
    synchronous: str,
    quota: str,
    journal_size: int,
    journal_bytes: int,
    auth: str,
    admin_token: str | None,
    admin_token_file: Path | None,
    allowed_hosts: tuple[str, ...],
    unsubscribe_delay: int,
    log_format: str,
    log_level: str,
    workers: int | None,
    **limit_values: int,
) -> None:
    """Start the Metering Service endpoint and the admin API."""
    prepare_metrics()  # before prometheus-client is imported (with the server, below)
    if workers is None:
        workers = os.cpu_count() or 1
    if workers > 1:
        from marketmeter.cluster.coordinator import serve as run
    else:
        from marketmeter.server import serve as run

    if admin_token is not None and not admin_token.strip():
        raise click.BadParameter(
            "is empty, which would refuse every admin call: give a token, or leave it out",
            param_hint="'--admin-token'",
        )
    ledger = LedgerFile(db, "--db")
    ledger.check(reads=False)
    _check_port(host, port)
    try:
        limits = ConnectionLimits(**limit_values)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--header-timeout'") from None

    settings = Settings(
        host=host,
        port=port,
        db=db,
        catalog=catalog,
        catalog_dir=catalog_dir,
        window=WindowPolicy(window),
        future_skew=timedelta(seconds=future_skew),
        meter_usage_max_age=timedelta(seconds=meter_usage_window),
        dry_run_answer=DryRunAnswer(dry_run_answer),
        token_ttl=timedelta(seconds=token_ttl),
        token_reuse=TokenReuse(token_reuse),
        synchronous="normal" if synchronous == "normal" else "full",
        quota="aws" if quota == "aws" else "off",
        journal_entries=journal_size,
        journal_bytes=journal_bytes,
        auth="sigv4" if auth == "sigv4" else "open",
        admin_token=resolve_admin_token(admin_token, admin_token_file),
        allowed_hosts=allowed_hosts,
        unsubscribe_delay=timedelta(seconds=unsubscribe_delay),
        limits=limits,
        log_format="json" if log_format == "json" else "text",
        log_level=_LEVELS[log_level],
        workers=workers,
    )
    from marketmeter.catalog.loader import CatalogError

    ledger.prepare()
    try:
        run(settings)
    except CatalogError as error:
        ledger.remove_if_created()
        raise click.ClickException(str(error)) from None
    except Exception as error:
        line = ledger.failure(error)
        if line is None:
            raise
        ledger.remove_if_created()
        raise line from None


def _check_port(host: str, port: int) -> None:
    """Refuse, before the ledger is opened, a port that is taken or a host not of here."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as error:
        raise click.BadParameter(
            f"{host!r} is not an address of this machine ({error}): give e.g. 127.0.0.1",
            param_hint="'--host'",
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"--port {port}: {host}:{port} is in use: stop what listens there, or give "
                    "another --port (0: any free port)"
                ) from None
            raise click.ClickException(
                f"--host {host} --port {port}: cannot listen there ({error.strerror}): give "
                "another address or a port above 1023"
            ) from None
