"""The test bench commands: ``clock``, ``faults``, ``journal``, ``reset`` and ``snapshot``.

The clock, the fault rules and the journal live in a running server's process: those commands
take ``--endpoint`` (or ``MARKETMETER_ENDPOINT``) and ``--admin-token`` (or
``MARKETMETER_ADMIN_TOKEN``) only. ``reset`` and ``snapshot`` act on a running server by
default, or straight on a database with ``--db`` (there, a reset empties the ledger only: no
server's clock, faults or journal to put back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import orjson

from marketmeter.cli.connection import server, service, target_options
from marketmeter.cli.output import cell, json_option, print_json, table
from marketmeter.operator.inputs import parse_duration
from marketmeter.refusal import Refusal
from marketmeter.testing.admin_client import MarketmeterAdmin

__all__ = ["BENCH_COMMANDS"]

_server_options = target_options(db=False, default="endpoint")


def _seconds(option: str, text: str) -> float:
    try:
        return parse_duration(option, text)
    except Refusal as error:
        raise click.BadParameter(error.message, param_hint=option) from None


# --- clock ----------------------------------------------------------------------------------


class _DurationCommand(click.Command):
    """A command whose argument may start with "-" ("-6h" is a duration, not options): only
    "--help" and a lone "-h" ask for help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = kwargs.setdefault("context_settings", {})
        settings.update(ignore_unknown_options=True, help_option_names=["--help"])
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, ["--help" if arg == "-h" else arg for arg in args])


def _clock_line(state: dict[str, Any]) -> str:
    offset = round(state["offsetSeconds"])
    return f"{state['now']}  {state['mode']}  (offset {offset:+d} s from wall time)"


@click.group(invoke_without_command=True)
@_server_options
@click.pass_context
def clock(ctx: click.Context) -> None:
    """The service clock of a running server: show it (no subcommand), set, freeze, offset,
    advance or reset it. Every window, token expiry and key rotation follows it."""
    if ctx.invoked_subcommand is None:
        _on_clock(lambda admin: admin.clock.state())


def _on_clock(change: Callable[[MarketmeterAdmin], dict[str, Any]]) -> None:
    with server() as admin:
        click.echo(_clock_line(change(admin)))


@clock.command("set")
@_server_options
@click.argument("time")
@click.option("--running", is_flag=True, help="Run on from TIME instead of standing still.")
def clock_set(time: str, running: bool) -> None:
    """Set the clock to TIME (ISO 8601, no zone = UTC, or epoch seconds); frozen there."""
    _on_clock(lambda admin: admin.clock.set(time, frozen=not running))


@clock.command("freeze")
@_server_options
def clock_freeze() -> None:
    """Stop the clock where it reads now."""
    _on_clock(lambda admin: admin.clock.freeze())


@clock.command("offset", cls=_DurationCommand)
@_server_options
@click.argument("duration")
def clock_offset(duration: str) -> None:
    """Run at wall time plus DURATION (90, -30s, 15m, 6h, 2d)."""
    seconds = _seconds("DURATION", duration)
    _on_clock(lambda admin: admin.clock.offset(seconds))


@clock.command("advance", cls=_DurationCommand)
@_server_options
@click.argument("duration")
def clock_advance(duration: str) -> None:
    """Move the clock by DURATION (90, 15m, 6h, 2d; negative goes back)."""
    seconds = _seconds("DURATION", duration)
    _on_clock(lambda admin: admin.clock.advance(seconds))


@clock.command("reset")
@_server_options
def clock_reset() -> None:
    """Back to wall time."""
    _on_clock(lambda admin: admin.clock.reset())


# --- faults ---------------------------------------------------------------------------------


@click.group()
@_server_options
def faults() -> None:
    """Fault rules of a running server: errors, UnprocessedRecords, latency, AWS quotas."""


@faults.command("list")
@_server_options
@json_option
def faults_list(as_json: bool) -> None:
    """List the rules with their counters (--json: LocalStack's shape, with ids)."""
    with server() as admin:
        rules = admin.faults.rules()
    if as_json:
        print_json(rules)
        return
    header = ("ID", "OPERATION", "PRODUCT", "ANSWER", "MATCHED", "APPLIED", "RULE")
    known = {"id", "operation", "productCode", "error", "matched", "applied"}
    rows = [
        (
            str(rule["id"]),
            cell(rule.get("operation")),
            cell(rule.get("productCode")),
            cell((rule.get("error") or {}).get("code")),
            str(rule["matched"]),
            str(rule["applied"]),
            cell({k: v for k, v in rule.items() if k not in known} or None),
        )
        for rule in rules
    ]
    click.echo(table(header, rows, "fault rule"))


@faults.command("add")
@_server_options
@click.option(
    "--kind",
    type=click.Choice(["delivery-failure"]),
    help="delivery-failure: fail notification deliveries (--product, --target) instead of calls.",
)
@click.option("--target", help="delivery-failure: only this target (its name or webhook URL).")
@click.option("--operation", help="Only this operation (e.g. BatchMeterUsage).")
@click.option("--product", help="Only calls for this product code.")
@click.option("--access-key", help="Only calls signed with this access key id.")
@click.option("--region", help="Only calls signed for this region.")
@click.option("--error", "code", help="Answer this error, e.g. ThrottlingException.")
@click.option("--status", type=int, help="HTTP status of the error (default: its own).")
@click.option("--message", help="Message of the error.")
@click.option("--unprocessed", type=click.IntRange(1), help="Hold back N records of a batch.")
@click.option("--unprocessed-indices", help="Hold back these positions, e.g. 0,3.")
@click.option("--latency", type=click.FloatRange(0), help="Answer this many ms later.")
@click.option(
    "--empty-page",
    is_flag=True,
    default=None,
    help="GetEntitlements: answer a page of none that still carries a NextToken.",
)
@click.option("--probability", type=float, help="Fire with this probability (0 < p <= 1).")
@click.option("--seed", type=int, help="Seed for the probability (repeatable runs).")
@click.option("--times", type=click.IntRange(1), help="Only the next N calls it fires on.")
@click.option("--every", type=click.IntRange(1), help="Only every Nth matching call.")
@click.option("--rule", "rule_json", help="The whole rule as JSON (LocalStack's shape).")
def faults_add(rule_json: str | None, **options: Any) -> None:
    """Add a fault rule. Without --error, --unprocessed, --latency or --empty-page it answers
    InternalServiceErrorException (500)."""
    if rule_json is not None:
        try:
            rule = orjson.loads(rule_json)
        except orjson.JSONDecodeError:
            raise click.BadParameter("is not valid JSON", param_hint="--rule") from None
    else:
        rule = _rule_from_options(options)
    with server() as admin:
        print_json(admin.faults.add(*(rule if isinstance(rule, list) else [rule])))


def _rule_from_options(options: dict[str, Any]) -> dict[str, Any]:
    names = {
        "kind": "kind",
        "target": "target",
        "operation": "operation",
        "product": "productCode",
        "access_key": "accessKeyId",
        "region": "region",
        "latency": "latencyMs",
        "empty_page": "emptyPage",
        "probability": "probability",
        "seed": "seed",
        "times": "times",
        "every": "everyNth",
    }
    rule = {names[k]: v for k, v in options.items() if k in names and v is not None}
    error = {
        key: options[option]
        for option, key in (("code", "code"), ("status", "statusCode"), ("message", "message"))
        if options[option] is not None
    }
    if error:
        rule["error"] = error
    if options["unprocessed"] is not None:
        rule["unprocessedRecords"] = {"count": options["unprocessed"]}
    elif options["unprocessed_indices"] is not None:
        try:
            indices = [int(i) for i in options["unprocessed_indices"].split(",")]
        except ValueError:
            raise click.BadParameter(
                "must be positions separated by commas, e.g. 0,3",
                param_hint="--unprocessed-indices",
            ) from None
        rule["unprocessedRecords"] = {"indices": indices}
    return rule


@faults.command("remove")
@_server_options
@click.argument("rule_id", type=int)
def faults_remove(rule_id: int) -> None:
    """Remove the rule RULE_ID."""
    with server() as admin:
        print_json(admin.faults.remove(rule_id))


@faults.command("clear")
@_server_options
def faults_clear() -> None:
    """Remove every rule."""
    with server() as admin:
        admin.faults.clear()
    click.echo("no fault rules")


@faults.command("latency")
@_server_options
@click.argument("milliseconds", type=click.FloatRange(0, 60_000))
def faults_latency(milliseconds: float) -> None:
    """Add MILLISECONDS to every call (0 removes it)."""
    with server() as admin:
        print_json(admin.faults.latency(milliseconds))


@faults.command("quota")
@_server_options
@click.argument("profile", type=click.Choice(["off", "aws", "custom"]))
@click.option("--rate", "rates", multiple=True, help="OPERATION=CALLS_PER_SECOND (repeatable).")
def faults_quota(profile: str, rates: tuple[str, ...]) -> None:
    """Throttle per account: aws (10/s BatchMeterUsage and MeterUsage, 5/s RegisterUsage),
    custom (--rate only), or off."""
    parsed: dict[str, float] = {}
    for item in rates:
        name, _, value = item.partition("=")
        try:
            parsed[name] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: expected OPERATION=CALLS_PER_SECOND", param_hint="--rate"
            ) from None
    with server() as admin:
        print_json(admin.faults.quota(profile, parsed or None))


# --- journal --------------------------------------------------------------------------------


@click.command()
@_server_options
@click.option("--operation", help="Only this operation.")
@click.option("--product", help="Only calls for this product code.")
@click.option("--status", type=int, help="Only answers with this HTTP status.")
@click.option("--error-type", help="Only answers with this error, e.g. ThrottlingException.")
@click.option("--since", help="At or after this service-clock time (ISO 8601 or epoch).")
@click.option("--until", help="Before this service-clock time.")
@click.option("--after", type=int, help="Only entries after this id.")
@click.option("--limit", default=100, show_default=True, help="The newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="Whole entries (bodies too) as JSON.")
def journal(as_json: bool, **filters: Any) -> None:
    """Every call a running server answered: operation, caller, status, verdicts, fault."""
    with server() as admin:
        entries = admin.journal.entries(**filters)
    if as_json:
        print_json(entries)
        return
    click.echo(
        f"{'ID':>6}  {'TIME (service clock)':<27} {'OPERATION':<16} {'PRODUCT':<20} "
        f"{'STATUS':>6}  OUTCOME"
    )
    for e in entries:
        outcome = e["errorType"] or " ".join(e["verdicts"]) or "-"
        if e["fault"]:
            outcome += f"  [{e['fault']}]"
        click.echo(
            f"{e['id']:>6}  {e['time']:<27} {e['operation'] or '-':<16} "
            f"{e['productCode'] or '-':<20} {e['status']:>6}  {outcome}"
        )


# --- reset and snapshots --------------------------------------------------------------------


@click.command()
@target_options(default="endpoint")
@click.option("--drop-catalog", is_flag=True, help="Drop the catalog and its tokens too.")
@click.option(
    "--keep",
    multiple=True,
    type=click.Choice(["clock", "faults", "journal"]),
    help="Leave this as it is (repeatable).",
)
def reset(drop_catalog: bool, keep: tuple[str, ...]) -> None:
    """Empty the ledger of a running server (billed records, ClientToken claims, container
    registrations) and put its clock, fault rules and journal back as it started (with --db:
    the database's ledger)."""
    with service("endpoint") as operator:
        result = operator.reset(drop_catalog, keep)
    deleted = ", ".join(f"{n} {table}" for table, n in result["deleted"].items() if n)
    click.echo(f"reset: deleted {deleted or 'nothing'}")


@click.group()
@target_options(default="endpoint")
def snapshot() -> None:
    """Named snapshots of a running server's whole state, for fast test setup.

    With --db, of a database's."""


def _snapshot_line(info: dict[str, Any]) -> str:
    counts = info["counts"]
    return (
        f"{info['name']}  taken {info['createdAt']}  {counts.get('usage_records', 0)} billed "
        f"record(s), {counts.get('agreements', 0)} agreement(s), {info['sizeBytes']} bytes"
    )


@snapshot.command("save")
@click.argument("name")
@target_options(default="endpoint")
def snapshot_save(name: str) -> None:
    """Save the whole state as NAME (replacing a snapshot of that name)."""
    with service("endpoint") as operator:
        click.echo("saved " + _snapshot_line(operator.save_snapshot(name)))


@snapshot.command("restore")
@click.argument("name")
@target_options(default="endpoint")
def snapshot_restore(name: str) -> None:
    """Replace the whole state with snapshot NAME."""
    with service("endpoint") as operator:
        click.echo("restored " + _snapshot_line(operator.restore_snapshot(name)))


@snapshot.command("list")
@target_options(default="endpoint")
@json_option
def snapshot_list(as_json: bool) -> None:
    """List the snapshots, newest first."""
    with service("endpoint", reads=True) as operator:
        found = operator.snapshots()
    if as_json:
        print_json(found)
        return
    header = ("NAME", "TAKEN (service clock)", "BILLED RECORDS", "AGREEMENTS", "BYTES")
    rows = [
        (
            info["name"],
            info["createdAt"],
            str(info["counts"].get("usage_records", 0)),
            str(info["counts"].get("agreements", 0)),
            str(info["sizeBytes"]),
        )
        for info in found
    ]
    click.echo(table(header, rows, "snapshot"))


@snapshot.command("delete")
@click.argument("name")
@target_options(default="endpoint")
def snapshot_delete(name: str) -> None:
    """Delete snapshot NAME."""
    with service("endpoint") as operator:
        operator.delete_snapshot(name)
    click.echo(f"deleted {name}")


BENCH_COMMANDS: tuple[click.Command, ...] = (clock, faults, journal, reset, snapshot)
