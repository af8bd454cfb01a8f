"""The lifecycle commands: ``agreements list|show|subscribe|unsubscribe|suspend|resubscribe|
update|fail`` and ``events``.

Like the bench commands they call a running server's admin API (``/_marketmeter/agreements``,
``/_marketmeter/events``), so every transition happens on the server's service clock and its
notifications go out from the server. ``--endpoint`` (or ``MARKETMETER_ENDPOINT``) says where
it listens; ``--admin-token`` (or ``MARKETMETER_ADMIN_TOKEN``) is sent when the server has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from marketmeter.cli_bench import admin_session, endpoint_options, print_json

__all__ = ["LIFECYCLE_COMMANDS", "agreements", "events"]

_json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")


def _agreement_line(agreement: dict[str, Any]) -> str:
    line = (
        f"{agreement['agreementId']}  {agreement['productCode']}  "
        f"{agreement['buyerAccountId']}  {agreement['state']}"
    )
    if agreement["state"] == "unsubscribe-pending" and agreement["endsAt"]:
        line += f" (unsubscribe-success at {agreement['endsAt']})"
    elif agreement["endsAt"]:
        line += f" (ends {agreement['endsAt']})"
    if agreement["freeTrial"]:
        line += "  free trial"
    return line


def _event_line(event: dict[str, Any]) -> str:
    line = (
        f"#{event['seq']}  {event['occurredAt']}  {event['action']}  {event['productCode']}  "
        f"{event['buyerAccountId']}  {event['channel']}"
    )
    if event["topic"]:
        line += f"  {event['topic']}"
    for delivery in event["deliveries"]:
        line += f"\n    → {delivery['url']}: {delivery['status']} after {delivery['attempts']}"
        line += " attempt" if delivery["attempts"] == 1 else " attempts"
        if delivery["history"] and delivery["status"] != "delivered":
            last = delivery["history"][-1]
            line += f" (last: {last['error'] or last['statusCode']})"
    return line


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    agreement = result["agreement"]
    if agreement is not None:
        click.echo(_agreement_line(agreement))
    if result.get("token"):
        click.echo(f"registration token: {result['token']['token']}")
    if not result["events"]:
        click.echo("no notification (the agreement already existed)")
    for event in result["events"]:
        click.echo(f"emitted {_event_line(event)}")


@click.group()
@endpoint_options
@click.pass_context
def agreements(ctx: click.Context, endpoint: str) -> None:
    """Agreements and their lifecycle, on a running server (its service clock)."""
    ctx.obj = endpoint


@agreements.command("list")
@click.option("--product", help="Only this product code.")
@click.option("--buyer", help="Only this buyer account id.")
@click.option(
    "--state",
    type=click.Choice(["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"]),
    help="Only agreements in this state now.",
)
@_json_option
@click.pass_obj
def agreements_list(
    endpoint: str,
    product: str | None,
    buyer: str | None,
    state: str | None,
    as_json: bool,
) -> None:
    """List agreements (their state as of the service clock's now)."""
    with admin_session(endpoint) as server:
        found = server.call(
            "GET", "/agreements", params={"product": product, "buyer": buyer, "state": state}
        )
    if as_json:
        print_json(found)
    elif not found["agreements"]:
        click.echo("no agreements")
    else:
        for agreement in found["agreements"]:
            click.echo(_agreement_line(agreement))


@agreements.command("show")
@click.argument("agreement")
@_json_option
@click.pass_obj
def agreements_show(endpoint: str, agreement: str, as_json: bool) -> None:
    """Show one agreement (AGREEMENT: its id agmt-... or its LicenseArn)."""
    with admin_session(endpoint) as server:
        found = server.call("GET", f"/agreements/{agreement}")
    if as_json:
        print_json(found)
    else:
        click.echo(_agreement_line(found))
        click.echo(f"  license {found['licenseArn']}; started {found['startsAt']}")


def _subscription_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of a subscription attempt: product, buyer, free trial, offer, --json."""
    for option in reversed(
        (
            click.option("--product", required=True, help="Product code of the subscription."),
            click.option("--buyer", required=True, help="Buyer's 12-digit account id."),
            click.option("--free-trial", is_flag=True, help="A free-trial offer."),
            click.option("--offer", help="The offer id (the message's offer-identifier)."),
            _json_option,
        )
    ):
        command = option(command)
    return command


def _subscription_body(
    product: str, buyer: str, free_trial: bool, offer: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"productCode": product, "buyerAccountId": buyer}
    body["freeTrial"] = free_trial
    if offer is not None:
        body["offerId"] = offer
    return body


def _subscription_command(name: str, path: str, summary: str) -> click.Command:
    @_subscription_options
    @click.pass_obj
    def command(
        endpoint: str,
        product: str,
        buyer: str,
        free_trial: bool,
        offer: str | None,
        as_json: bool,
    ) -> None:
        body = _subscription_body(product, buyer, free_trial, offer)
        with admin_session(endpoint) as server:
            _report(server.call("POST", path, body), as_json)

    command.__doc__ = summary
    return agreements.command(name)(command)


_subscription_command(
    "subscribe", "/agreements", "Subscribe a buyer to a product (subscribe-success)."
)
_subscription_command(
    "fail",
    "/subscribe-fail",
    "A subscription that failed, e.g. no billing agreement (subscribe-fail).",
)


def _transition_command(name: str, verb: str, summary: str) -> click.Command:
    @click.argument("agreement")
    @_json_option
    @click.pass_obj
    def command(endpoint: str, agreement: str, as_json: bool) -> None:
        with admin_session(endpoint) as server:
            _report(server.call("POST", f"/agreements/{agreement}/{verb}"), as_json)

    command.__doc__ = f"{summary} (AGREEMENT: its id agmt-... or its LicenseArn)."
    return agreements.command(name)(command)


_transition_command(
    "unsubscribe",
    "unsubscribe",
    "Unsubscribe: unsubscribe-pending now, unsubscribe-success after the server's delay",
)
_transition_command("suspend", "suspend", "Suspend an agreement: nothing is billed from now")
_transition_command(
    "resubscribe", "resubscribe", "Resubscribe a suspended, unsubscribed or unsubscribe-pending one"
)


@agreements.command("update")
@click.argument("agreement")
@click.option(
    "--free-trial/--paid", default=None, help="Turn it into a free trial, or a paid agreement."
)
@_json_option
@click.pass_obj
def agreements_update(
    endpoint: str, agreement: str, free_trial: bool | None, as_json: bool
) -> None:
    """The buyer's entitlement changed (entitlement-updated)."""
    body = {} if free_trial is None else {"freeTrial": free_trial}
    with admin_session(endpoint) as server:
        _report(server.call("POST", f"/agreements/{agreement}/entitlement-update", body), as_json)


@click.command()
@endpoint_options
@click.option("--product", help="Only this product code.")
@click.option("--buyer", help="Only this buyer account id.")
@click.option("--action", help="Only this action, e.g. unsubscribe-success.")
@click.option("--since", help="From this service-clock time (ISO 8601 or epoch seconds).")
@click.option("--until", help="Before this service-clock time.")
@click.option("--after", type=click.IntRange(0), help="Only events after this #seq.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@_json_option
def events(
    endpoint: str,
    product: str | None,
    buyer: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    after: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """The lifecycle event log: every notification emitted, with its webhook deliveries."""
    params = {
        "product": product,
        "buyer": buyer,
        "action": action,
        "since": since,
        "until": until,
        "after": after,
        "limit": limit,
    }
    with admin_session(endpoint) as server:
        found = server.call("GET", "/events", params=params)
    if as_json:
        print_json(found)
    elif not found["events"]:
        click.echo("no events")
    else:
        for event in found["events"]:
            click.echo(_event_line(event))


LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (agreements, events)
