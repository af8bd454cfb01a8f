"""``marketmeter token mint|list`` (SaaS registration tokens) and ``marketmeter keys
show|list|rotate`` (RegisterUsage signing keys).

They work on the ledger straight (``--db``, the default) or on a running server
(``--endpoint``), through the same operator: a token minted on a server is issued on its
service clock, one minted on a database on the wall clock.
"""

from __future__ import annotations

from datetime import timedelta

import click

from marketmeter.cli.connection import service, target_options
from marketmeter.cli.output import json_option, print_json, table
from marketmeter.config import DEFAULT_TOKEN_TTL

__all__ = ["keys", "token", "token_ttl_option"]

token_ttl_option = click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=int(DEFAULT_TOKEN_TTL.total_seconds()),
    show_default=True,
    help="Token lifetime in seconds, as the server is configured (for the expiry shown).",
)

# a refused mint's field, as this command's option
_MINT_OPTIONS = {
    "productCode": "--product",
    "buyerAccountId": "--buyer",
    "licenseArn": "--license-arn",
    "freeTrial": "--free-trial",
}


@click.group()
def token() -> None:
    """SaaS registration tokens (what ResolveCustomer resolves)."""


@token.command("mint")
@click.option("--product", "product_code", required=True, help="A SaaS product code.")
@click.option("--buyer", "buyer_account_id", required=True, help="The buyer's account id.")
@click.option("--license-arn", help="Which of the buyer's agreements (default: the latest).")
@click.option("--free-trial/--no-free-trial", default=None, help="Override the offer type.")
@target_options()
def token_mint(
    product_code: str,
    buyer_account_id: str,
    license_arn: str | None,
    free_trial: bool | None,
) -> None:
    """Mint a token for a buyer's existing agreement; print only the token."""
    body: dict[str, object] = {"productCode": product_code, "buyerAccountId": buyer_account_id}
    if license_arn is not None:
        body["licenseArn"] = license_arn
    if free_trial is not None:
        body["freeTrial"] = free_trial
    with service(options=_MINT_OPTIONS) as operator:
        minted = operator.mint_token(body)
    click.echo(minted["token"])


@token.command("list")
@click.option("--product", "product_code", help="Only this product.")
@click.option("--buyer", "buyer_account_id", help="Only this buyer account.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@token_ttl_option
@json_option
@target_options()
def token_list(
    product_code: str | None,
    buyer_account_id: str | None,
    limit: int,
    token_ttl: int,
    as_json: bool,
) -> None:
    """List registration tokens, newest first."""
    params = {"limit": str(limit)}
    if product_code is not None:
        params["product"] = product_code
    if buyer_account_id is not None:
        params["buyer"] = buyer_account_id
    with service(token_ttl=timedelta(seconds=token_ttl), reads=True) as operator:
        found = operator.tokens(params)
    if as_json:
        print_json(found)
        return
    header = ("TOKEN", "PRODUCT", "BUYER", "OFFER", "EXPIRES (UTC)", "STATE")
    rows = [
        (
            t["token"],
            t["productCode"],
            t["customerAWSAccountId"],
            t["offerType"] or "-",
            t["expiresAt"],
            "expired" if t["expired"] else "valid",
        )
        for t in found["tokens"]
    ]
    click.echo(table(header, rows, "token"))


@click.group()
def keys() -> None:
    """RegisterUsage signing keys (one RSA key pair per public key version)."""


@keys.command("show")
@click.option("--version", "version", type=click.IntRange(1), default=1, show_default=True)
@target_options()
def keys_show(version: int) -> None:
    """Print the public key (PEM) of a version; version 1 is created on first use."""
    with service(options={"version": "--version"}) as operator:
        pem = operator.key_pem(str(version))
    click.echo(pem, nl=False)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON (with the PEM texts).")
@target_options()
def keys_list(as_json: bool) -> None:
    """List the key versions and when they were created and retired."""
    with service(reads=True) as operator:
        found = operator.keys()
    if as_json:
        print_json(found)
        return
    header = ("VERSION", "CREATED (UTC)", "RETIRED (UTC)")
    rows = [
        (str(key["version"]), key["createdAt"], key["retiredAt"] or "- (current)")
        for key in found["keys"]
    ]
    click.echo(table(header, rows, "key version"))


@keys.command("rotate")
@target_options()
def keys_rotate() -> None:
    """Create the next key version and retire the older ones (now)."""
    with service() as operator:
        key = operator.rotate_key()
    click.echo(f"version {key['version']} created; older versions retired")
