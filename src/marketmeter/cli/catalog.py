"""The catalog commands: ``marketmeter catalog apply|show|demo`` (a whole catalog file) and
``marketmeter sellers|products|offers|buyers ...`` (entry by entry).

``catalog apply`` and ``catalog show`` work on the database by default (``--db``), the entry
commands on a running server (``--endpoint``, so a change reaches every node at once); each
takes the other option too, and both go through the operator's catalog actions. Answers print
as readable tables, or as the operator's JSON with ``--json``. Entries are the catalog file's
(snake_case); a secret access key is printed once, by ``add-key``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from marketmeter.cli.connection import service, target_options
from marketmeter.cli.output import cell, fields, print_json, table

__all__ = ["CATALOG_COMMANDS", "catalog"]

_json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def _key_ids(entry: dict[str, Any]) -> str:
    return cell([key["access_key_id"] for key in entry["access_keys"]])


def _show(value: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(value)
    else:
        click.echo(fields(value))


def _entry_option(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--entry",
        "entry_json",
        help=f"Fields of the {kind} entry as JSON (the catalog file's); options override them.",
    )


def _entry(entry_json: str | None) -> dict[str, Any]:
    if entry_json is None:
        return {}
    try:
        value = orjson.loads(entry_json)
    except orjson.JSONDecodeError:
        raise click.BadParameter("is not valid JSON", param_hint="--entry") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--entry")
    return value


def _given(**options: Any) -> dict[str, Any]:
    """The options given on the command line (a flag or a multiple option left out is not)."""
    return {name: value for name, value in options.items() if value not in (None, (), False)}


# --- a whole catalog -----------------------------------------------------------------------------


@click.group()
def catalog() -> None:
    """Sellers, products, buyers and agreements the service meters against."""


@catalog.command("apply")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@target_options()
def catalog_apply(file: Path) -> None:
    """Validate FILE and upsert it into the catalog (all or nothing; idempotent). A large file
    is read entry by entry; on a terminal, a progress bar shows how far."""
    from marketmeter.catalog.loader import CatalogError

    try:
        size = file.stat().st_size
        file.open("rb").close()
    except OSError as error:
        problem = f"cannot read the file: {error.strerror}"
        raise click.ClickException(str(CatalogError(str(file), [problem]))) from None
    with service() as operator:
        if sys.stderr.isatty():
            with click.progressbar(length=size, label=f"applying {file}", file=sys.stderr) as bar:
                applied = operator.catalog_apply(file, bar.update)
        else:
            applied = operator.catalog_apply(file)
    click.echo(
        f"applied {file}: {applied['sellers']} seller(s), {applied['products']} product(s), "
        f"{applied['buyers']} buyer(s), {applied['agreements']} agreement(s); "
        f"catalog version {applied['catalogVersion']}; {applied['tokensMinted']} registration "
        "token(s) minted (marketmeter token list)"
    )


@catalog.command("show")
@click.option("--show-secrets", is_flag=True, help="Print secret access keys (masked otherwise).")
@target_options()
def catalog_show(show_secrets: bool) -> None:
    """Print the stored catalog as JSON; secret access keys are masked unless --show-secrets
    (from a server they are never sent)."""
    with service(reads=True) as operator:
        shown = operator.catalog_show()
    click.echo(json.dumps(shown if show_secrets else masked(shown), indent=2, default=str))


MASK = "****"


def masked(value: Any) -> Any:
    """``value`` with every ``secret_access_key`` replaced by ``****``."""
    if isinstance(value, dict):
        return {k: MASK if k == "secret_access_key" and v else masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return value


@catalog.command("demo")
def catalog_demo() -> None:
    """Print the bundled demo catalog (a starting point for your own)."""
    from marketmeter.server import demo_catalog_text

    click.echo(demo_catalog_text(), nl=False)


# --- sellers and buyers -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accounts:
    """Sellers or buyers: their name, and their table's columns."""

    kind: str
    header: tuple[str, ...]
    row: Callable[[dict[str, Any]], tuple[str, ...]]


_SELLERS = _Accounts(
    "seller",
    ("ACCOUNT ID", "NAME", "ACCESS KEYS"),
    lambda s: (s["account_id"], cell(s["name"]), _key_ids(s)),
)
_BUYERS = _Accounts(
    "buyer",
    ("ACCOUNT ID", "CUSTOMER IDENTIFIER", "NAME", "ACCESS KEYS"),
    lambda b: (b["account_id"], cell(b["customer_identifier"]), cell(b["name"]), _key_ids(b)),
)


def _accounts(group: click.Group, accounts: _Accounts) -> None:
    """The verbs of sellers and buyers: list, add, show, remove, add-key, remove-key."""
    kind = accounts.kind

    @group.command("list")
    @_json_option
    @target_options(default="endpoint")
    def list_accounts(as_json: bool) -> None:
        with service("endpoint", reads=True) as operator:
            found = operator.accounts(kind)
        if as_json:
            print_json(found)
            return
        click.echo(table(accounts.header, [accounts.row(a) for a in found], kind))

    list_accounts.__doc__ = f"List the {kind}s."

    @group.command("remove")
    @click.argument("account_id")
    @target_options(default="endpoint")
    def remove(account_id: str) -> None:
        """Delete ACCOUNT_ID and its access keys."""
        with service("endpoint") as operator:
            operator.remove_account(kind, account_id)
        click.echo(f"removed {kind} {account_id}")

    @group.command("add-key")
    @click.argument("account_id")
    @click.option("--access-key-id", help="The key id (default: generated, AKIA...).")
    @click.option("--secret-access-key", help="The secret (with --access-key-id).")
    @_json_option
    @target_options(default="endpoint")
    def add_key(
        account_id: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        as_json: bool,
    ) -> None:
        """Add an access key pair to ACCOUNT_ID; its secret is printed this once."""
        body: dict[str, Any] = {}
        if access_key_id is not None or secret_access_key is not None:
            body = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
        with service("endpoint") as operator:
            pair = operator.add_key(kind, account_id, body)
        _show(pair, as_json)
        if not as_json:
            click.echo("(the secret is shown this once)")

    @group.command("remove-key")
    @click.argument("account_id")
    @click.argument("access_key_id")
    @target_options(default="endpoint")
    def remove_key(account_id: str, access_key_id: str) -> None:
        """Delete ACCESS_KEY_ID of ACCOUNT_ID."""
        with service("endpoint") as operator:
            operator.remove_key(kind, account_id, access_key_id)
        click.echo(f"removed access key {access_key_id} of {kind} {account_id}")

    @group.command("show")
    @click.argument("account_id")
    @_json_option
    @target_options(default="endpoint")
    def show(account_id: str, as_json: bool) -> None:
        """Show ACCOUNT_ID (access key ids, never secrets)."""
        with service("endpoint", reads=True) as operator:
            _show(operator.account(kind, account_id), as_json)


@click.group()
@target_options(default="endpoint")
def sellers() -> None:
    """Sellers of the catalog, and their access keys."""


@sellers.command("add")
@click.argument("account_id")
@click.option("--name", help="A name for people.")
@_entry_option("seller")
@_json_option
@target_options(default="endpoint")
def sellers_add(account_id: str, name: str | None, entry_json: str | None, as_json: bool) -> None:
    """Add the seller ACCOUNT_ID (12 digits)."""
    entry = {**_entry(entry_json), "account_id": account_id, **_given(name=name)}
    with service("endpoint") as operator:
        _show(operator.add_account("seller", entry), as_json)


_accounts(sellers, _SELLERS)


@click.group()
@target_options(default="endpoint")
def buyers() -> None:
    """Buyers of the catalog, and their access keys."""


@buyers.command("add")
@click.argument("account_id")
@click.option("--customer-identifier", help="The legacy CustomerIdentifier.")
@click.option("--name", help="A name for people.")
@_entry_option("buyer")
@_json_option
@target_options(default="endpoint")
def buyers_add(
    account_id: str,
    customer_identifier: str | None,
    name: str | None,
    entry_json: str | None,
    as_json: bool,
) -> None:
    """Add the buyer ACCOUNT_ID (12 digits)."""
    given = _given(customer_identifier=customer_identifier, name=name)
    entry = {**_entry(entry_json), "account_id": account_id, **given}
    with service("endpoint") as operator:
        _show(operator.add_account("buyer", entry), as_json)


_accounts(buyers, _BUYERS)


# --- products -------------------------------------------------------------------------------------


def _product_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--seller", help="The seller's account id."),
        click.option("--kind", type=click.Choice(["saas", "ami", "container"])),
        click.option("--dimension", "dimensions", multiple=True, help="A dimension (repeatable)."),
        click.option("--integration", type=click.Choice(["legacy", "concurrent-agreements"])),
        click.option("--name", help="A name for people."),
        click.option("--registration-url", help="The SaaS registration URL (http or https)."),
        click.option(
            "--per-request-metering/--no-per-request-metering",
            default=None,
            help="MeterUsage with ClientToken (agent products).",
        ),
        _entry_option("product"),
        _json_option,
        target_options(default="endpoint"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _product_changes(options: dict[str, Any]) -> dict[str, Any]:
    changes = _given(**{k: v for k, v in options.items() if k != "per_request_metering"})
    if options["per_request_metering"] is not None:
        changes["per_request_metering"] = options["per_request_metering"]
    if "dimensions" in changes:
        changes["dimensions"] = list(changes["dimensions"])
    return changes


@click.group()
@target_options(default="endpoint")
def products() -> None:
    """Products of the catalog, with their dimensions."""


@products.command("list")
@_json_option
@target_options(default="endpoint")
def products_list(as_json: bool) -> None:
    """List the products."""
    with service("endpoint", reads=True) as operator:
        found = operator.products()
    if as_json:
        print_json(found)
        return
    header = ("PRODUCT CODE", "SELLER", "KIND", "INTEGRATION", "DIMENSIONS")
    rows = [
        (p["product_code"], p["seller"], p["kind"], p["integration"], cell(p["dimensions"]))
        for p in found
    ]
    click.echo(table(header, rows, "product"))


@products.command("show")
@click.argument("product_code")
@_json_option
@target_options(default="endpoint")
def products_show(product_code: str, as_json: bool) -> None:
    """Show PRODUCT_CODE."""
    with service("endpoint", reads=True) as operator:
        _show(operator.product(product_code), as_json)


@products.command("add")
@click.argument("product_code")
@_product_options
def products_add(product_code: str, entry_json: str | None, as_json: bool, **options: Any) -> None:
    """Add the product PRODUCT_CODE (--seller, --kind and --dimension at least)."""
    entry = {**_entry(entry_json), "product_code": product_code, **_product_changes(options)}
    with service("endpoint") as operator:
        _show(operator.add_product(entry), as_json)


@products.command("update")
@click.argument("product_code")
@_product_options
def products_update(
    product_code: str, entry_json: str | None, as_json: bool, **options: Any
) -> None:
    """Change fields of PRODUCT_CODE; the others keep their values (--dimension replaces
    every dimension)."""
    with service("endpoint") as operator:
        current = operator.product(product_code)
        entry = {**current, **_entry(entry_json), **_product_changes(options)}
        _show(operator.replace_product(product_code, entry), as_json)


@products.command("remove")
@click.argument("product_code")
@target_options(default="endpoint")
def products_remove(product_code: str) -> None:
    """Delete PRODUCT_CODE (not while it has agreements)."""
    with service("endpoint") as operator:
        operator.remove_product(product_code)
    click.echo(f"removed product {product_code}")


# --- offers ---------------------------------------------------------------------------------------


@click.group()
@target_options(default="endpoint")
def offers() -> None:
    """Offers of the catalog's products, with their terms (docs/catalog.md, "Offers")."""


@offers.command("list")
@_json_option
@target_options(default="endpoint")
def offers_list(as_json: bool) -> None:
    """List the offers."""
    with service("endpoint") as operator:
        found = operator.offers()
    if as_json:
        print_json(found)
        return
    header = ("OFFER ID", "PRODUCT", "BUYERS", "TERMS")
    rows = [
        (
            o["offer_id"],
            o["product"],
            cell(o["buyers"]) if o["buyers"] else "(public)",
            cell([next(iter(term)) for term in o["terms"]]),
        )
        for o in found
    ]
    click.echo(table(header, rows, "offer"))


@offers.command("show")
@click.argument("offer_id")
@_json_option
@target_options(default="endpoint")
def offers_show(offer_id: str, as_json: bool) -> None:
    """Show OFFER_ID and its terms."""
    with service("endpoint") as operator:
        _show(operator.offer(offer_id), as_json)


@offers.command("put")
@click.argument("offer_id")
@click.option("--product", help="The product the offer sells.")
@click.option("--buyer", "buyers", multiple=True, help="A buyer of a private offer (repeat).")
@click.option("--name", help="The offer's name.")
@_entry_option("offer")
@_json_option
@target_options(default="endpoint")
def offers_put(
    offer_id: str,
    product: str | None,
    buyers: tuple[str, ...],
    name: str | None,
    entry_json: str | None,
    as_json: bool,
) -> None:
    """Add OFFER_ID, or replace it if it exists (its terms: --entry '{"terms": [...]}')."""
    changes = _given(product=product, buyers=list(buyers), name=name)
    entry = {**_entry(entry_json), "offer_id": offer_id, **changes}
    with service("endpoint") as operator:
        known = {o["offer_id"] for o in operator.offers()}
        if offer_id in known:
            _show(operator.replace_offer(offer_id, entry), as_json)
        else:
            _show(operator.add_offer(entry), as_json)


@offers.command("remove")
@click.argument("offer_id")
@target_options(default="endpoint")
def offers_remove(offer_id: str) -> None:
    """Delete OFFER_ID (not while agreements were made on it)."""
    with service("endpoint") as operator:
        operator.remove_offer(offer_id)
    click.echo(f"removed offer {offer_id}")


CATALOG_COMMANDS: tuple[click.Command, ...] = (catalog, sellers, products, offers, buyers)
