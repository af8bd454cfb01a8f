"""The ``marketmeter`` command: ``serve``, ``catalog apply|show|demo``, ``usage list``,
``db migrate|copy``; (from ``cli_registration``) ``subscribe``, ``token mint|list`` and
``keys show|list|rotate``; (from ``cli_bench``, talking to a running server) ``clock``,
``faults``, ``journal``, ``reset`` and ``snapshot``.

Every command that touches the database takes ``--db`` (``cli_database``), so the CLI and a
running server share one ledger.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import timedelta
from pathlib import Path

import click
import orjson

from marketmeter import __version__
from marketmeter.admin.inputs import AdminInputError
from marketmeter.admin.usage import as_table, record_json, usage_query
from marketmeter.catalog.loader import CatalogError, load_catalog_file
from marketmeter.cli_bench import BENCH_COMMANDS
from marketmeter.cli_catalog import CATALOG_COMMANDS
from marketmeter.cli_database import db_option, open_database
from marketmeter.cli_lifecycle import LIFECYCLE_COMMANDS
from marketmeter.cli_registration import keys, subscribe, token
from marketmeter.config import DEFAULT_HOST, DEFAULT_PORT, Settings
from marketmeter.metering.meter_usage import DryRunAnswer
from marketmeter.metering.registration_tokens import (
    DEFAULT_TOKEN_TTL,
    RandomTokens,
    tokens_for_new_agreements,
)
from marketmeter.metering.windows import WindowPolicy
from marketmeter.protocol.limits import ConnectionLimits
from marketmeter.store.base import SchemaError
from marketmeter.store.copy import CopyRefused, copy_ledger
from marketmeter.store.open import UnsupportedDatabase
from marketmeter.testbench.journal import DEFAULT_MAX_ENTRIES

__all__ = ["main"]

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


def _limit_options(command: Callable[..., None]) -> Callable[..., None]:
    defaults = ConnectionLimits()
    for name in reversed(fields(ConnectionLimits)):
        option = click.option(
            "--" + name.name.replace("_", "-"),
            type=click.IntRange(1),
            default=getattr(defaults, name.name),
            show_default=True,
            help=_LIMIT_HELP[name.name],
        )
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter: the AWS Marketplace Metering Service, self-hosted."""


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port.")
@db_option
@click.option(
    "--catalog",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Catalog YAML to apply at start. Default: the bundled demo catalog, applied only "
    "if the database has no catalog yet.",
)
@click.option(
    "--window",
    type=click.Choice([p.value for p in WindowPolicy]),
    default=WindowPolicy.SIX_HOURS.value,
    show_default=True,
    help="Usage timestamp window: 6h (seed documents) or 24h-month-end (AWS today).",
)
@click.option(
    "--future-skew",
    type=click.IntRange(0),
    default=300,
    show_default=True,
    help="Seconds a usage timestamp may lie in the future.",
)
@click.option(
    "--meter-usage-window",
    type=click.IntRange(1),
    default=6 * 3600,
    show_default=True,
    help="MeterUsage: seconds in the past a usage timestamp may lie (less than).",
)
@click.option(
    "--dry-run-answer",
    type=click.Choice([a.value for a in DryRunAnswer]),
    default=DryRunAnswer.SUCCESS.value,
    show_default=True,
    help="MeterUsage DryRun that would succeed: success answers HTTP 200 "
    '{"MeteringRecordId": "DryRunOperation"} as AWS does; error answers the 400 '
    "DryRunOperation error (docs/meter-usage.md).",
)
@click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=int(DEFAULT_TOKEN_TTL.total_seconds()),
    show_default=True,
    help="Seconds a SaaS registration token resolves after it was issued (service clock).",
)
@click.option(
    "--sync",
    "synchronous",
    type=click.Choice(["full", "normal"]),
    default="full",
    show_default=True,
    help="SQLite synchronous mode: full survives power loss, normal only process crashes.",
)
@click.option(
    "--quota",
    type=click.Choice(["off", "aws"]),
    default="off",
    show_default=True,
    help="Throttle per account at AWS's published rates (10/s BatchMeterUsage and MeterUsage, "
    "5/s RegisterUsage). Change it live: marketmeter faults quota.",
)
@click.option(
    "--journal-size",
    type=click.IntRange(0),
    default=DEFAULT_MAX_ENTRIES,
    show_default=True,
    help="Calls kept in the request journal (0: no journal); at most 16 MiB of bodies.",
)
@click.option(
    "--auth",
    type=click.Choice(["open", "sigv4"]),
    default="open",
    show_default=True,
    help="open: accept any request, signed or not (local testing); sigv4: verify every "
    "request's Signature Version 4 against the catalog's access keys (docs/strict-auth.md).",
)
@click.option(
    "--admin-token",
    envvar="MARKETMETER_ADMIN_TOKEN",
    default=None,
    help="The bearer token the admin API (/_marketmeter/) requires, in either auth mode "
    "[env: MARKETMETER_ADMIN_TOKEN]. With --auth sigv4 and no token, one is generated and "
    "printed once.",
)
@click.option(
    "--unsubscribe-delay",
    type=click.IntRange(0),
    default=3600,
    show_default=True,
    help="Seconds (service clock) between unsubscribe-pending and unsubscribe-success.",
)
@_limit_options
def serve(
    host: str,
    port: int,
    db: str,
    catalog: Path | None,
    window: str,
    future_skew: int,
    meter_usage_window: int,
    dry_run_answer: str,
    token_ttl: int,
    synchronous: str,
    quota: str,
    journal_size: int,
    auth: str,
    admin_token: str | None,
    unsubscribe_delay: int,
    **limit_values: int,
) -> None:
    """Start the Metering Service endpoint and the admin API."""
    from marketmeter.server import serve as run

    try:
        limits = ConnectionLimits(**limit_values)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--header-timeout'") from None

    settings = Settings(
        host=host,
        port=port,
        db=db,
        catalog=catalog,
        window=WindowPolicy(window),
        future_skew=timedelta(seconds=future_skew),
        meter_usage_max_age=timedelta(seconds=meter_usage_window),
        dry_run_answer=DryRunAnswer(dry_run_answer),
        token_ttl=timedelta(seconds=token_ttl),
        synchronous="normal" if synchronous == "normal" else "full",
        quota="aws" if quota == "aws" else "off",
        journal_entries=journal_size,
        auth="sigv4" if auth == "sigv4" else "open",
        admin_token=admin_token,
        unsubscribe_delay=timedelta(seconds=unsubscribe_delay),
        limits=limits,
    )
    try:
        run(settings)
    except CatalogError as error:
        raise click.ClickException(str(error)) from None
    except (UnsupportedDatabase, SchemaError) as error:
        raise click.ClickException(str(error)) from None


@main.group()
def catalog() -> None:
    """Sellers, products, buyers and agreements the service meters against."""


@catalog.command("apply")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@db_option
def catalog_apply(file: Path, db: str) -> None:
    """Validate FILE and upsert it into the catalog (all or nothing; idempotent)."""
    store = open_database(db)
    try:
        current = store.catalog_snapshot_now().catalog
        try:
            parsed = load_catalog_file(file, current)
        except CatalogError as error:
            raise click.ClickException(str(error)) from None
        tokens = tokens_for_new_agreements(
            store.catalog_snapshot_now(), parsed, time.time(), RandomTokens()
        )
        version = store.apply_catalog_now(parsed, tokens)
    finally:
        store.close_now()
    click.echo(
        f"applied {file}: {len(parsed.sellers)} seller(s), {len(parsed.products)} product(s), "
        f"{len(parsed.buyers)} buyer(s), {len(parsed.agreements)} agreement(s); "
        f"catalog version {version}; {len(tokens)} registration token(s) minted "
        "(marketmeter token list)"
    )


@catalog.command("show")
@db_option
def catalog_show(db: str) -> None:
    """Print the stored catalog as JSON."""
    store = open_database(db)
    try:
        snapshot = store.catalog_snapshot_now()
    finally:
        store.close_now()
    body = {"version": snapshot.version, **asdict(snapshot.catalog)}
    click.echo(json.dumps(body, indent=2, default=str))


@catalog.command("demo")
def catalog_demo() -> None:
    """Print the bundled demo catalog (a starting point for your own)."""
    from marketmeter.server import demo_catalog_text

    click.echo(demo_catalog_text(), nl=False)


@main.group()
def usage() -> None:
    """What has been billed."""


@usage.command("list")
@db_option
@click.option("--product", help="Only this product code.")
@click.option("--customer", help="Only this customer: AWS account id or CustomerIdentifier.")
@click.option("--dimension", help="Only this dimension.")
@click.option("--from", "start", help="Usage at or after this time (ISO 8601 or epoch).")
@click.option("--to", "end", help="Usage before this time (ISO 8601 or epoch).")
@click.option("--limit", default="1000", show_default=True, help="At most this many records.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def usage_list(
    db: str,
    product: str | None,
    customer: str | None,
    dimension: str | None,
    start: str | None,
    end: str | None,
    limit: str,
    as_json: bool,
) -> None:
    """List billed usage records, oldest usage first."""
    filters = {
        "product": product,
        "customer": customer,
        "dimension": dimension,
        "from": start,
        "to": end,
        "limit": limit,
    }
    try:
        query = usage_query({k: v for k, v in filters.items() if v is not None})
    except AdminInputError as error:
        raise click.BadParameter(error.message, param_hint=f"--{error.field}") from None
    store = open_database(db)
    try:
        records = store.usage_now(query)
    finally:
        store.close_now()
    if as_json:
        sys.stdout.buffer.write(
            orjson.dumps({"records": [record_json(r) for r in records]}, option=orjson.OPT_INDENT_2)
            + b"\n"
        )
    else:
        click.echo(as_table(records))


main.add_command(subscribe)
main.add_command(token)
main.add_command(keys)
for command in BENCH_COMMANDS:
    main.add_command(command)
for command in CATALOG_COMMANDS:
    main.add_command(command)
for command in LIFECYCLE_COMMANDS:
    main.add_command(command)


@main.group()
def db() -> None:
    """The ledger's database: migrate it, copy it into another (e.g. SQLite → PostgreSQL)."""


@db.command("migrate")
@db_option
def db_migrate(db: str) -> None:
    """Bring the database's schema up to this marketmeter's (refuses a newer schema)."""
    store = open_database(db)  # opening migrates
    try:
        version = store.read(
            lambda sql: sql.execute("SELECT max(version) FROM schema_migrations").fetchone()
        )
    finally:
        store.close_now()
    click.echo(f"{store.describe()}: schema version {version[0]}")


@db.command("copy")
@click.option("--from", "source_url", required=True, help="The ledger to copy (path or URL).")
@click.option("--to", "target_url", required=True, help="An empty ledger (path or URL).")
def db_copy(source_url: str, target_url: str) -> None:
    """Copy a whole ledger: catalog, tokens, keys, registrations, claims, billed records."""
    source = open_database(source_url)
    try:
        target = open_database(target_url)
        try:
            report = copy_ledger(source, target)
        except CopyRefused as error:
            raise click.ClickException(str(error)) from None
        finally:
            target.close_now()
    finally:
        source.close_now()
    click.echo(f"{report.describe()}\n  from {source.describe()}\n  to   {target.describe()}")
