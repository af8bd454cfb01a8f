"""The notification outbox's commands: ``deliveries list|targets|redeliver|pause|resume``.

On a running server by default (``--endpoint``), or a database (``--db``: a server sharing it
delivers what is redelivered or resumed). Failing deliveries on purpose is a fault rule of kind
``delivery-failure`` (``marketmeter faults add --kind delivery-failure --target NAME``).
"""

from __future__ import annotations

from typing import Any

import click

from marketmeter.cli.connection import service, target_options
from marketmeter.cli.output import json_option, lines, print_json

__all__ = ["deliveries"]


def _delivery_line(found: dict[str, Any]) -> str:
    event = found["event"]
    line = (
        f"#{event['seq']}  {event['occurredAt']}  {event['action']}  {event['productCode']}  "
        f"{event['buyerAccountId']}  → {found['target']}: {found['status']} after "
        f"{found['attempts']} attempt{'' if found['attempts'] == 1 else 's'}"
    )
    if found["history"] and found["status"] != "delivered":
        last = found["history"][-1]
        line += f" (last: {last['error'] or last['statusCode']})"
    return line


def _target_line(target: dict[str, Any]) -> str:
    kind = target["kind"] or "removed"
    line = (
        f"{target['productCode']}  {target['target']}  {kind}  "
        f"pending {target['pending']}, delivered {target['delivered']}, "
        f"failed {target['failed']}"
    )
    return line + ("  paused" if target["paused"] else "")


@click.group()
@target_options(default="endpoint")
def deliveries() -> None:
    """Notification deliveries per target: list, redeliver, pause and resume targets."""


@deliveries.command("list")
@click.option("--product", help="Only this product code.")
@click.option("--target", help="Only this target (its name or webhook URL).")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--buyer", help="Only this buyer account id.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@target_options(default="endpoint")
def deliveries_list(
    product: str | None,
    target: str | None,
    status: str | None,
    buyer: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Deliveries, oldest event first, with their last error."""
    given = {"product": product, "target": target, "status": status, "buyer": buyer}
    params = {k: v for k, v in given.items() if v is not None} | {"limit": str(limit)}
    with service("endpoint") as operator:
        found = operator.deliveries(params)
    lines(found, found["deliveries"], _delivery_line, "no deliveries", as_json)


@deliveries.command("targets")
@json_option
@target_options(default="endpoint")
def deliveries_targets(as_json: bool) -> None:
    """Every product's targets: pending, delivered and failed deliveries, paused or not."""
    with service("endpoint") as operator:
        found = operator.targets()
    lines(found, found["targets"], _target_line, "no targets", as_json)


@deliveries.command("redeliver")
@click.argument("event")
@click.option("--target", required=True, help="The target's name or webhook URL.")
@target_options(default="endpoint")
def deliveries_redeliver(event: str, target: str) -> None:
    """Send EVENT (its id or #seq) to a target again."""
    with service("endpoint") as operator:
        print_json(operator.redeliver(event.lstrip("#"), target))


@deliveries.command("pause")
@click.argument("product")
@click.argument("target")
@target_options(default="endpoint")
def deliveries_pause(product: str, target: str) -> None:
    """Hold PRODUCT's TARGET: its deliveries stay pending, in order."""
    with service("endpoint") as operator:
        click.echo(_target_line(operator.pause_target(product, target, True)))


@deliveries.command("resume")
@click.argument("product")
@click.argument("target")
@target_options(default="endpoint")
def deliveries_resume(product: str, target: str) -> None:
    """Deliver PRODUCT's TARGET's pending deliveries again."""
    with service("endpoint") as operator:
        click.echo(_target_line(operator.pause_target(product, target, False)))
