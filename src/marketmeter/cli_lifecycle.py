"""The lifecycle commands: ``agreements list|show|subscribe|unsubscribe|suspend|resubscribe|
update|fail`` and ``events``.

Like the bench commands they call a running server's admin API (``/_marketmeter/agreements``,
``/_marketmeter/events``), so every transition happens on the server's service clock and its
notifications go out from the server. ``--endpoint`` (or ``MARKETMETER_ENDPOINT``) says where
it listens; ``--admin-token`` (or ``MARKETMETER_ADMIN_TOKEN``) is sent when the server has one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click
import httpx
import orjson

from marketmeter.config import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["LIFECYCLE_COMMANDS", "agreements", "events"]

_endpoint_option = click.option(
    "--endpoint",
    envvar="MARKETMETER_ENDPOINT",
    default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    show_default=True,
    help="The running server (env MARKETMETER_ENDPOINT).",
)
_token_option = click.option(
    "--admin-token",
    envvar="MARKETMETER_ADMIN_TOKEN",
    default=None,
    help="The server's admin token, if it has one (env MARKETMETER_ADMIN_TOKEN).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")


class _Server:
    """The admin API of the running server, for these commands."""

    def __init__(self, endpoint: str, admin_token: str | None) -> None:
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.endpoint = endpoint.rstrip("/")
        self._http = httpx.Client(base_url=self.endpoint, timeout=30.0, headers=headers)

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        response = self._http.request(
            method, f"/_marketmeter{path}", json=body, params=query or None
        )
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"error": response.text}
            field = problem.get("field")
            where = f"{field}: " if field else ""
            raise click.ClickException(f"{response.status_code}: {where}{problem.get('error', '')}")
        return response.json()

    def close(self) -> None:
        self._http.close()


@contextmanager
def _server(endpoint: str, admin_token: str | None) -> Iterator[_Server]:
    server = _Server(endpoint, admin_token)
    try:
        yield server
    except httpx.TransportError as error:
        raise click.ClickException(
            f"cannot reach marketmeter at {endpoint} ({error}); is `marketmeter serve` running?"
        ) from None
    finally:
        server.close()


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


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
        _print_json(result)
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
@_endpoint_option
@_token_option
@click.pass_context
def agreements(ctx: click.Context, endpoint: str, admin_token: str | None) -> None:
    """Agreements and their lifecycle, on a running server (its service clock)."""
    ctx.obj = (endpoint, admin_token)


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
    target: tuple[str, str | None],
    product: str | None,
    buyer: str | None,
    state: str | None,
    as_json: bool,
) -> None:
    """List agreements (their state as of the service clock's now)."""
    with _server(*target) as server:
        found = server.call(
            "GET", "/agreements", params={"product": product, "buyer": buyer, "state": state}
        )
    if as_json:
        _print_json(found)
    elif not found["agreements"]:
        click.echo("no agreements")
    else:
        for agreement in found["agreements"]:
            click.echo(_agreement_line(agreement))


@agreements.command("show")
@click.argument("agreement")
@_json_option
@click.pass_obj
def agreements_show(target: tuple[str, str | None], agreement: str, as_json: bool) -> None:
    """Show one agreement (AGREEMENT: its id agmt-... or its LicenseArn)."""
    with _server(*target) as server:
        found = server.call("GET", f"/agreements/{agreement}")
    if as_json:
        _print_json(found)
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
        target: tuple[str, str | None],
        product: str,
        buyer: str,
        free_trial: bool,
        offer: str | None,
        as_json: bool,
    ) -> None:
        body = _subscription_body(product, buyer, free_trial, offer)
        with _server(*target) as server:
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
    def command(target: tuple[str, str | None], agreement: str, as_json: bool) -> None:
        with _server(*target) as server:
            _report(server.call("POST", f"/agreements/{agreement}/{verb}"), as_json)

    command.__doc__ = f"{summary} (AGREEMENT: its id agmt-... or its LicenseArn)."
    return agreements.command(name)(command)


_transition_command(
    "unsubscribe",
    "unsubscribe",
    "Unsubscribe: unsubscribe-pending now, unsubscribe-success after the server's delay",
)
_transition_command("suspend", "suspend", "Suspend an agreement: nothing is billed from now")
_transition_command("resubscribe", "resubscribe", "Resubscribe a suspended or unsubscribed one")


@agreements.command("update")
@click.argument("agreement")
@click.option(
    "--free-trial/--paid", default=None, help="Turn it into a free trial, or a paid agreement."
)
@_json_option
@click.pass_obj
def agreements_update(
    target: tuple[str, str | None], agreement: str, free_trial: bool | None, as_json: bool
) -> None:
    """The buyer's entitlement changed (entitlement-updated)."""
    body = {} if free_trial is None else {"freeTrial": free_trial}
    with _server(*target) as server:
        _report(server.call("POST", f"/agreements/{agreement}/entitlement-update", body), as_json)


@click.command()
@_endpoint_option
@_token_option
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
    admin_token: str | None,
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
    with _server(endpoint, admin_token) as server:
        found = server.call("GET", "/events", params=params)
    if as_json:
        _print_json(found)
    elif not found["events"]:
        click.echo("no events")
    else:
        for event in found["events"]:
            click.echo(_event_line(event))


LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (agreements, events)
