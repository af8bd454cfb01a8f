"""The lifecycle commands: ``subscribe`` (the SaaS sign-up flow, token delivered to the seller's
page), ``agreements list|show|subscribe|unsubscribe|suspend|resubscribe|update|fail`` and
``events``.

``subscribe`` and ``agreements subscribe`` are one path: the operator's subscription
(``LifecycleService.subscribe``), the first then posting the registration token to the
product's registration URL as the buyer's browser would. ``subscribe`` works on the database
(``--db``, its default) or a running server (``--endpoint``); the ``agreements`` and
``events`` commands on a running server by default (``--endpoint``), or a database (``--db``).
On a server every transition happens on its service clock and its notifications go out from
it; on a database, on the wall clock, and a server sharing that database delivers them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from marketmeter.cli.connection import service, target_options
from marketmeter.cli.output import cell, json_option, print_json, table
from marketmeter.cli.service import Service
from marketmeter.cli.tokens import token_ttl_option
from marketmeter.lifecycle.registration_page import Delivery, deliver

__all__ = ["agreements", "events", "subscribe"]

# a refused subscription's field, as the options of these commands
_SUBSCRIPTION_OPTIONS = {
    "product": "--product",
    "productCode": "--product",
    "buyer": "--buyer",
    "buyerAccountId": "--buyer",
    "offerId": "--offer",
    "configuration": "--selector/--quantity",
    "configuration.selector": "--selector",
    "configuration.dimensions": "--quantity",
}


def _subscription_body(
    product: str, buyer: str, free_trial: bool, offer: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"productCode": product, "buyerAccountId": buyer}
    body["freeTrial"] = free_trial
    if offer is not None:
        body["offerId"] = offer
    return body


def subscribe_buyer(
    operator: Service, product: str, buyer: str, free_trial: bool, offer: str | None = None
) -> dict[str, Any]:
    """Subscribe ``buyer`` to ``product``: the transition's result."""
    return operator.subscribe(_subscription_body(product, buyer, free_trial, offer))


# --- subscribe ------------------------------------------------------------------------------


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "url": delivery.url,
        "form": delivery.form,
        "status": delivery.status,
        "location": delivery.location,
        "body": delivery.body,
        "error": delivery.error,
    }


@click.command()
@click.option("--product", "product_code", required=True, help="Product code to subscribe to.")
@click.option("--buyer", "buyer_account_id", required=True, help="Buyer's 12-digit account id.")
@click.option("--free-trial", is_flag=True, help="A free-trial offer (the POST says so).")
@click.option("--url", help="POST the token here instead of the product's registration URL.")
@click.option("--no-deliver", is_flag=True, help="Create agreement and token, POST nothing.")
@token_ttl_option
@json_option
@target_options()
def subscribe(
    product_code: str,
    buyer_account_id: str,
    free_trial: bool,
    url: str | None,
    no_deliver: bool,
    token_ttl: int,
    as_json: bool,
) -> None:
    """Subscribe a buyer to a product, as AWS Marketplace does when an offer is accepted.

    Creates the buyer (if unknown) and the agreement (unless one is active; a new one logs
    subscribe-success for the product's webhooks, which a running server delivers), mints a
    registration token for SaaS products and delivers it, as the buyer's browser would, by a
    form POST of x-amzn-marketplace-token to the product's registration URL; then reports the
    seller's response. Exits 1 if the POST failed or the seller answered 4xx/5xx.
    """
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--url")
    ttl = timedelta(seconds=token_ttl)
    with service(options=_SUBSCRIPTION_OPTIONS, token_ttl=ttl) as operator:
        done = subscribe_buyer(operator, product_code, buyer_account_id, free_trial)
        registration_url = operator.product(product_code)["registration_url"]
    agreement, token, created = done["agreement"], done["token"], done["subscription"]
    target = url or registration_url
    delivery = None
    if token is not None and target is not None and not no_deliver:
        delivery = deliver(target, token["token"], token["offerType"])
    if as_json:
        print_json(
            {
                "buyer": {
                    "accountId": agreement["buyerAccountId"],
                    "customerIdentifier": agreement["customerIdentifier"],
                    "created": created["buyerCreated"],
                },
                "agreement": {
                    "licenseArn": agreement["licenseArn"],
                    "agreementId": agreement["agreementId"],
                    "created": created["agreementCreated"],
                },
                "token": token,
                "delivery": _delivery_json(delivery) if delivery else None,
            }
        )
    else:
        _report_subscription(done, product_code, target, delivery, no_deliver)
    if delivery is not None and not delivery.ok:
        sys.exit(1)


def _report_subscription(
    done: dict[str, Any],
    product_code: str,
    target: str | None,
    delivery: Delivery | None,
    no_deliver: bool,
) -> None:
    echo = click.echo
    agreement, token, created = done["agreement"], done["token"], done["subscription"]
    account = agreement["buyerAccountId"]
    echo(f"subscribed buyer {account} to {product_code}")
    identifier = agreement["customerIdentifier"]
    echo(
        f"  buyer:      {account} ({'new' if created['buyerCreated'] else 'existing'})"
        + (f", CustomerIdentifier {identifier}" if identifier else "")
    )
    echo(
        f"  agreement:  {agreement['licenseArn']} "
        f"({'new' if created['agreementCreated'] else 'already active'}; "
        f"{agreement['agreementId']})"
    )
    if token is None:
        echo("  token:      none (registration tokens are for SaaS products)")
        return
    echo(f"  token:      {token['token']}")
    echo(
        f"              expires {token['expiresAt']}"
        + (" (free trial)" if token["offerType"] else "")
    )
    if no_deliver:
        echo("  delivery:   skipped (--no-deliver)")
        return
    if target is None:
        echo("  delivery:   none: the product has no registration_url (give --url)")
        return
    assert delivery is not None
    fields = ", ".join(delivery.form)
    echo(f"POST {delivery.url} ({fields})")
    if delivery.error is not None:
        echo(f"  -> failed: {delivery.error}")
        return
    echo(f"  -> {delivery.status} {delivery.reason}".rstrip())
    if delivery.location:
        echo(f"     Location: {delivery.location}")
    if delivery.body:
        for line in delivery.body.splitlines()[:20]:
            echo(f"     {line}")


# --- agreements and events ------------------------------------------------------------------


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
        for item in agreement.get("entitlements") or ():
            until = f" until {item['expiresAt']}" if item["expiresAt"] else ""
            click.echo(f"  entitlement {item['dimension']} = {json.dumps(item['value'])}{until}")
    if result.get("token"):
        click.echo(f"registration token: {result['token']['token']}")
    if not result["events"]:
        click.echo("no notification (the agreement already existed)")
    for event in result["events"]:
        click.echo(f"emitted {_event_line(event)}")


@click.group()
@target_options(default="endpoint")
def agreements() -> None:
    """Agreements and their lifecycle, on a running server (its service clock) or a database."""


@agreements.command("list")
@click.option("--product", help="Only this product code.")
@click.option("--buyer", help="Only this buyer account id.")
@click.option(
    "--state",
    type=click.Choice(["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"]),
    help="Only agreements in this state now.",
)
@json_option
@target_options(default="endpoint")
def agreements_list(
    product: str | None, buyer: str | None, state: str | None, as_json: bool
) -> None:
    """List agreements (their state as of the service clock's now)."""
    params = {k: v for k, v in {"product": product, "buyer": buyer, "state": state}.items() if v}
    with service("endpoint", reads=True) as operator:
        found = operator.agreements(params)
    if as_json:
        print_json(found)
        return
    header = ("AGREEMENT", "PRODUCT", "BUYER", "STATE", "ENDS (UTC)", "FREE TRIAL")
    rows = [
        (
            a["agreementId"],
            a["productCode"],
            a["buyerAccountId"],
            a["state"],
            cell(a["endsAt"]),
            "yes" if a["freeTrial"] else "no",
        )
        for a in found["agreements"]
    ]
    click.echo(table(header, rows, "agreement"))


@agreements.command("show")
@click.argument("agreement")
@json_option
@target_options(default="endpoint")
def agreements_show(agreement: str, as_json: bool) -> None:
    """Show one agreement (AGREEMENT: its id agmt-... or its LicenseArn)."""
    with service("endpoint", reads=True) as operator:
        found = operator.agreement(agreement)
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
            json_option,
            target_options(default="endpoint"),
        )
    ):
        command = option(command)
    return command


def _quantities(
    _context: click.Context, _parameter: click.Parameter, specs: tuple[str, ...]
) -> dict[str, int]:
    """``--quantity DIMENSION=QUANTITY`` options as the subscription's ``dimensions``."""
    found: dict[str, int] = {}
    for spec in specs:
        dimension, sep, quantity = spec.partition("=")
        if not sep or not dimension or not quantity.isdecimal():
            raise click.BadParameter(f"{spec!r}: use DIMENSION=QUANTITY (a whole number)")
        found[dimension] = int(quantity)
    return found


@agreements.command("subscribe")
@_subscription_options
@click.option(
    "--selector",
    help="A contract offer's rate card to buy, by its selector: the duration, e.g. P12M "
    "(default: the first card's).",
)
@click.option(
    "--quantity",
    "quantities",
    multiple=True,
    callback=_quantities,
    metavar="DIMENSION=QUANTITY",
    help="How much of a contract dimension to buy (repeat; default: 1 of the card's first).",
)
@click.option(
    "--auto-renew/--no-auto-renew", default=None, help="Whether the contract renews itself."
)
def agreements_subscribe(
    product: str,
    buyer: str,
    free_trial: bool,
    offer: str | None,
    as_json: bool,
    selector: str | None,
    quantities: dict[str, int],
    auto_renew: bool | None,
) -> None:
    """Subscribe a buyer to a product (subscribe-success); one sold by contract gets what the
    offer's rate card sells (entitlement-updated)."""
    body = _subscription_body(product, buyer, free_trial, offer)
    configuration: dict[str, Any] = {}
    if selector is not None:
        configuration["selector"] = selector
    if quantities:
        configuration["dimensions"] = quantities
    if auto_renew is not None:
        configuration["autoRenew"] = auto_renew
    if configuration:
        body["configuration"] = configuration
    with service("endpoint", options=_SUBSCRIPTION_OPTIONS) as operator:
        _report(operator.subscribe(body), as_json)


@agreements.command("fail")
@_subscription_options
def agreements_fail(
    product: str, buyer: str, free_trial: bool, offer: str | None, as_json: bool
) -> None:
    """A subscription that failed, e.g. no billing agreement (subscribe-fail)."""
    body = _subscription_body(product, buyer, free_trial, offer)
    with service("endpoint", options=_SUBSCRIPTION_OPTIONS) as operator:
        _report(operator.subscribe_fail(body), as_json)


def _transition_command(name: str, summary: str) -> click.Command:
    @click.argument("agreement")
    @json_option
    @target_options(default="endpoint")
    def command(agreement: str, as_json: bool) -> None:
        with service("endpoint") as operator:
            _report(operator.transition(agreement, name), as_json)

    command.__doc__ = f"{summary} (AGREEMENT: its id agmt-... or its LicenseArn)."
    return agreements.command(name)(command)


_transition_command(
    "unsubscribe",
    "Unsubscribe: unsubscribe-pending now, unsubscribe-success after the server's delay",
)
_transition_command("suspend", "Suspend an agreement: nothing is billed from now")
_transition_command(
    "resubscribe", "Resubscribe a suspended, unsubscribed or unsubscribe-pending one"
)


def _entitlement_value(text: str) -> Any:
    """A value as JSON when it reads as one (10, 2.5, true, "10"), else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def _entitlement_option(spec: str) -> dict[str, Any]:
    dimension, sep, rest = spec.partition("=")
    if not sep or not dimension:
        raise click.BadParameter(f"{spec!r}: use DIMENSION=VALUE[@EXPIRES]")
    value, at, expires = rest.rpartition("@")
    if not at or not expires[:1].isdigit():  # no expiry: an "@" within the value stays
        value, expires = rest, ""
    entry: dict[str, Any] = {"dimension": dimension, "value": _entitlement_value(value)}
    if expires:
        entry["expiresAt"] = expires
    return entry


@agreements.command("update")
@click.argument("agreement")
@click.option(
    "--free-trial/--paid", default=None, help="Turn it into a free trial, or a paid agreement."
)
@click.option(
    "--entitlement",
    "entitlements",
    multiple=True,
    metavar="DIMENSION=VALUE[@EXPIRES]",
    help="The agreement's entitlements from now (repeat; they replace the old ones): VALUE "
    "10 is IntegerValue, 2.5 DoubleValue, true BooleanValue, gold or '\"10\"' StringValue; "
    "EXPIRES an ISO 8601 time (default: the agreement's end).",
)
@click.option("--no-entitlements", is_flag=True, help="Remove every entitlement.")
@click.option("--ends-at", help="A new end of the agreement (a renewal), ISO 8601.")
@json_option
@target_options(default="endpoint")
def agreements_update(
    agreement: str,
    free_trial: bool | None,
    entitlements: tuple[str, ...],
    no_entitlements: bool,
    ends_at: str | None,
    as_json: bool,
) -> None:
    """The buyer's entitlement changed: an upgrade, amendment or renewal (entitlement-updated)."""
    body: dict[str, Any] = {} if free_trial is None else {"freeTrial": free_trial}
    if entitlements or no_entitlements:
        body["entitlements"] = [_entitlement_option(spec) for spec in entitlements]
    if ends_at is not None:
        body["endsAt"] = ends_at
    with service("endpoint") as operator:
        _report(operator.transition(agreement, "entitlement-update", body), as_json)


@click.command()
@click.option("--product", help="Only this product code.")
@click.option("--buyer", help="Only this buyer account id.")
@click.option("--action", help="Only this action, e.g. unsubscribe-success.")
@click.option("--since", help="From this service-clock time (ISO 8601 or epoch seconds).")
@click.option("--until", help="Before this service-clock time.")
@click.option("--after", type=click.IntRange(0), help="Only events after this #seq.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@target_options(default="endpoint")
def events(
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
    given = {
        "product": product,
        "buyer": buyer,
        "action": action,
        "since": since,
        "until": until,
        "after": after,
        "limit": limit,
    }
    params = {k: str(v) for k, v in given.items() if v is not None}
    with service("endpoint", reads=True) as operator:
        found = operator.events(params)
    if as_json:
        print_json(found)
        return
    header = ("SEQ", "TIME (service clock)", "ACTION", "PRODUCT", "BUYER", "CHANNEL", "DELIVERIES")
    rows = [
        (
            str(e["seq"]),
            e["occurredAt"],
            e["action"],
            e["productCode"],
            e["buyerAccountId"],
            e["channel"],
            cell([f"{d['url']} {d['status']} ({d['attempts']})" for d in e["deliveries"]]),
        )
        for e in found["events"]
    ]
    click.echo(table(header, rows, "event"))
