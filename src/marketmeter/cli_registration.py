"""The sign-up and key commands: ``subscribe``, ``token mint|list``, ``keys show|list|rotate``.

They work on the ledger directly (``--db``), next to a running server or without one; a server
picks up their changes on its next request. Times are wall-clock here: a server whose clock was
moved through ``/_marketmeter/clock`` judges expiry on its own clock, so to mint tokens on the
service clock use ``POST /_marketmeter/tokens`` instead.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from typing import Any

import click
import orjson

from marketmeter.admin.registration import key_json, token_json, tokens_table
from marketmeter.cli_database import db_option, open_database
from marketmeter.lifecycle.registration_page import Delivery, deliver
from marketmeter.lifecycle.transitions import subscribe as subscribe_buyer
from marketmeter.lifecycle.types import Subscription
from marketmeter.metering.clock import SystemClock
from marketmeter.metering.ids import RandomIds
from marketmeter.metering.registration_tokens import (
    DEFAULT_TOKEN_TTL,
    RandomTokens,
    mint_token,
)
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.refusal import Refusal
from marketmeter.store.base import TokenQuery

__all__ = ["keys", "subscribe", "token"]

_ttl_option = click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=int(DEFAULT_TOKEN_TTL.total_seconds()),
    show_default=True,
    help="Token lifetime in seconds, as the server is configured (for the expiry shown).",
)


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


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
@_ttl_option
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@db_option
def subscribe(
    product_code: str,
    buyer_account_id: str,
    free_trial: bool,
    url: str | None,
    no_deliver: bool,
    token_ttl: int,
    as_json: bool,
    db: str,
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
    store = open_database(db)
    try:
        now = time.time()
        try:
            done = store.commit_transition_now(
                lambda catalog: subscribe_buyer(
                    catalog,
                    product_code,
                    buyer_account_id,
                    now,
                    RandomTokens(),
                    RandomIds(),
                    free_trial,
                ),
                now,
            )
        except Refusal as error:
            raise click.BadParameter(error.message, param_hint=f"--{error.field}") from None
        catalog = store.catalog_snapshot_now()
    finally:
        store.close_now()
    plan = done.subscription
    assert plan is not None, "a subscription plans a Subscription"

    product = catalog.products[product_code]
    target = url or product.registration_url
    delivery = None
    if plan.token is not None and target is not None and not no_deliver:
        delivery = deliver(target, plan.token)

    ttl = timedelta(seconds=token_ttl)
    if as_json:
        _print_json(
            {
                "buyer": {
                    "accountId": plan.buyer.account_id,
                    "customerIdentifier": plan.buyer.customer_identifier,
                    "created": plan.created_buyer,
                },
                "agreement": {
                    "licenseArn": plan.agreement.license_arn,
                    "agreementId": plan.agreement.agreement_id,
                    "created": plan.created_agreement,
                },
                "token": token_json(plan.token, ttl, now) if plan.token else None,
                "delivery": _delivery_json(delivery) if delivery else None,
            }
        )
    else:
        _report(plan.buyer.account_id, product_code, plan, target, delivery, ttl, now, no_deliver)
    if delivery is not None and not delivery.ok:
        sys.exit(1)


def _report(
    account: str,
    product_code: str,
    plan: Subscription,
    target: str | None,
    delivery: Delivery | None,
    ttl: timedelta,
    now: float,
    no_deliver: bool,
) -> None:
    echo = click.echo
    echo(f"subscribed buyer {account} to {product_code}")
    echo(
        f"  buyer:      {account} ({'new' if plan.created_buyer else 'existing'})"
        + (
            f", CustomerIdentifier {plan.buyer.customer_identifier}"
            if plan.buyer.customer_identifier
            else ""
        )
    )
    echo(
        f"  agreement:  {plan.agreement.license_arn} "
        f"({'new' if plan.created_agreement else 'already active'}; "
        f"{plan.agreement.agreement_id})"
    )
    if plan.token is None:
        echo("  token:      none (registration tokens are for SaaS products)")
        return
    info = token_json(plan.token, ttl, now)
    echo(f"  token:      {plan.token.value}")
    echo(
        f"              expires {info['expiresAt']}"
        + (" (free trial)" if info["offerType"] else "")
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


@click.group()
def token() -> None:
    """SaaS registration tokens (what ResolveCustomer resolves)."""


@token.command("mint")
@click.option("--product", "product_code", required=True, help="A SaaS product code.")
@click.option("--buyer", "buyer_account_id", required=True, help="The buyer's account id.")
@click.option("--license-arn", help="Which of the buyer's agreements (default: the latest).")
@click.option("--free-trial/--no-free-trial", default=None, help="Override the offer type.")
@db_option
def token_mint(
    product_code: str,
    buyer_account_id: str,
    license_arn: str | None,
    free_trial: bool | None,
    db: str,
) -> None:
    """Mint a token for a buyer's existing agreement; print only the token."""
    store = open_database(db)
    try:
        catalog = store.catalog_snapshot_now()
        try:
            minted = mint_token(
                catalog,
                product_code,
                buyer_account_id,
                time.time(),
                RandomTokens(),
                license_arn,
                free_trial,
            )
        except Refusal as error:
            hint = {"licenseArn": "--license-arn"}.get(error.field or "", f"--{error.field}")
            raise click.BadParameter(error.message, param_hint=hint) from None
        asyncio.run(store.issue_tokens([minted]))
    finally:
        store.close_now()
    click.echo(minted.value)


@token.command("list")
@click.option("--product", "product_code", help="Only this product.")
@click.option("--buyer", "buyer_account_id", help="Only this buyer account.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@_ttl_option
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@db_option
def token_list(
    product_code: str | None,
    buyer_account_id: str | None,
    limit: int,
    token_ttl: int,
    as_json: bool,
    db: str,
) -> None:
    """List registration tokens, newest first."""
    store = open_database(db)
    try:
        found = asyncio.run(
            store.registration_tokens(TokenQuery(product_code, buyer_account_id, limit))
        )
    finally:
        store.close_now()
    ttl = timedelta(seconds=token_ttl)
    now = time.time()
    if as_json:
        _print_json({"tokens": [token_json(t, ttl, now) for t in found]})
    else:
        click.echo(tokens_table(found, ttl, now))


@click.group()
def keys() -> None:
    """RegisterUsage signing keys (one RSA key pair per public key version)."""


def _key_ring(db: str) -> tuple[Any, KeyRing]:
    store = open_database(db)
    return store, KeyRing(store, SystemClock())


@keys.command("show")
@click.option("--version", "version", type=click.IntRange(1), default=1, show_default=True)
@db_option
def keys_show(version: int, db: str) -> None:
    """Print the public key (PEM) of a version; version 1 is created on first use."""
    store, ring = _key_ring(db)
    try:
        key = asyncio.run(ring.key(version))
    finally:
        store.close_now()
    if key is None:
        raise click.BadParameter(f"no public key version {version}", param_hint="--version")
    click.echo(key.public_key_pem, nl=False)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON (with the PEM texts).")
@db_option
def keys_list(as_json: bool, db: str) -> None:
    """List the key versions and when they were created and retired."""
    store, ring = _key_ring(db)
    try:
        found = asyncio.run(ring.keys())
    finally:
        store.close_now()
    if as_json:
        _print_json({"keys": [key_json(k) for k in found]})
        return
    for key in found:
        info = key_json(key)
        retired = f"retired {info['retiredAt']}" if info["retiredAt"] else "current"
        click.echo(f"version {key.version}  created {info['createdAt']}  {retired}")


@keys.command("rotate")
@db_option
def keys_rotate(db: str) -> None:
    """Create the next key version and retire the older ones (now)."""
    store, ring = _key_ring(db)
    try:
        key = asyncio.run(ring.rotate())
    finally:
        store.close_now()
    click.echo(f"version {key.version} created; older versions retired")
