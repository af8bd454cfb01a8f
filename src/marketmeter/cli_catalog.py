"""The catalog commands: ``marketmeter sellers|products|buyers ...`` against a running server.

Like the bench commands (``cli_bench``), they call the server's admin API
(``/_marketmeter/sellers``, ...), so a change reaches every node at once: ``--endpoint`` (or
``MARKETMETER_ENDPOINT``) and ``--admin-token`` (or ``MARKETMETER_ADMIN_TOKEN``) say where and
how. Answers print as readable tables, or as the API's JSON with ``--json``. Entries are the
catalog file's (snake_case); a secret access key is printed once, by ``add-key``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click
import orjson

from marketmeter.cli_bench import admin_session, endpoint_options, print_json
from marketmeter.testing.admin_client import AccountsHandle, MarketmeterAdmin

__all__ = ["CATALOG_COMMANDS"]

_json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def _cell(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], noun: str) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.append(f"{len(rows)} {noun}(s)")
    return "\n".join(lines)


def _fields(entry: dict[str, Any]) -> str:
    """One ``field  value`` line per field of an entry (access keys by id)."""
    shown = {
        name: [k["access_key_id"] for k in value] if name == "access_keys" else value
        for name, value in entry.items()
    }
    width = max(len(name) for name in shown)
    return "\n".join(
        f"{name.ljust(width)}  {_cell(value)}".rstrip() for name, value in shown.items()
    )


def _key_ids(entry: dict[str, Any]) -> str:
    return _cell([key["access_key_id"] for key in entry["access_keys"]])


def _show(value: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(value)
    else:
        click.echo(_fields(value))


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


# --- shared verbs of sellers and buyers ----------------------------------------------------------


def _accounts(
    group: click.Group, handle: Callable[[MarketmeterAdmin], AccountsHandle], kind: str
) -> None:
    """The key verbs and ``remove``, the same for sellers and buyers."""

    @group.command("remove")
    @click.argument("account_id")
    @click.pass_obj
    def remove(endpoint: str, account_id: str) -> None:
        """Delete ACCOUNT_ID and its access keys."""
        with admin_session(endpoint) as admin:
            handle(admin).remove(account_id)
        click.echo(f"removed {kind} {account_id}")

    @group.command("add-key")
    @click.argument("account_id")
    @click.option("--access-key-id", help="The key id (default: generated, AKIA...).")
    @click.option("--secret-access-key", help="The secret (with --access-key-id).")
    @_json_option
    @click.pass_obj
    def add_key(
        endpoint: str,
        account_id: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        as_json: bool,
    ) -> None:
        """Add an access key pair to ACCOUNT_ID; its secret is printed this once."""
        with admin_session(endpoint) as admin:
            pair = handle(admin).add_key(account_id, access_key_id, secret_access_key)
        _show(pair, as_json)
        if not as_json:
            click.echo("(the secret is shown this once)")

    @group.command("remove-key")
    @click.argument("account_id")
    @click.argument("access_key_id")
    @click.pass_obj
    def remove_key(endpoint: str, account_id: str, access_key_id: str) -> None:
        """Delete ACCESS_KEY_ID of ACCOUNT_ID."""
        with admin_session(endpoint) as admin:
            handle(admin).remove_key(account_id, access_key_id)
        click.echo(f"removed access key {access_key_id} of {kind} {account_id}")

    @group.command("show")
    @click.argument("account_id")
    @_json_option
    @click.pass_obj
    def show(endpoint: str, account_id: str, as_json: bool) -> None:
        """Show ACCOUNT_ID (access key ids, never secrets)."""
        with admin_session(endpoint) as admin:
            _show(handle(admin).get(account_id), as_json)


# --- sellers --------------------------------------------------------------------------------------


@click.group()
@endpoint_options
@click.pass_context
def sellers(ctx: click.Context, endpoint: str) -> None:
    """Sellers of a running server's catalog, and their access keys."""
    ctx.obj = endpoint


@sellers.command("list")
@_json_option
@click.pass_obj
def sellers_list(endpoint: str, as_json: bool) -> None:
    """List the sellers."""
    with admin_session(endpoint) as admin:
        found = admin.sellers.list()
    if as_json:
        print_json(found)
        return
    rows = [(s["account_id"], _cell(s["name"]), _key_ids(s)) for s in found]
    click.echo(_table(("ACCOUNT ID", "NAME", "ACCESS KEYS"), rows, "seller"))


@sellers.command("add")
@click.argument("account_id")
@click.option("--name", help="A name for people.")
@_entry_option("seller")
@_json_option
@click.pass_obj
def sellers_add(
    endpoint: str, account_id: str, name: str | None, entry_json: str | None, as_json: bool
) -> None:
    """Add the seller ACCOUNT_ID (12 digits)."""
    entry = {**_entry(entry_json), "account_id": account_id, **_given(name=name)}
    with admin_session(endpoint) as admin:
        _show(admin.sellers.add(entry), as_json)


_accounts(sellers, lambda admin: admin.sellers, "seller")


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
@endpoint_options
@click.pass_context
def products(ctx: click.Context, endpoint: str) -> None:
    """Products of a running server's catalog, with their dimensions."""
    ctx.obj = endpoint


@products.command("list")
@_json_option
@click.pass_obj
def products_list(endpoint: str, as_json: bool) -> None:
    """List the products."""
    with admin_session(endpoint) as admin:
        found = admin.products.list()
    if as_json:
        print_json(found)
        return
    header = ("PRODUCT CODE", "SELLER", "KIND", "INTEGRATION", "DIMENSIONS")
    rows = [
        (p["product_code"], p["seller"], p["kind"], p["integration"], _cell(p["dimensions"]))
        for p in found
    ]
    click.echo(_table(header, rows, "product"))


@products.command("show")
@click.argument("product_code")
@_json_option
@click.pass_obj
def products_show(endpoint: str, product_code: str, as_json: bool) -> None:
    """Show PRODUCT_CODE."""
    with admin_session(endpoint) as admin:
        _show(admin.products.get(product_code), as_json)


@products.command("add")
@click.argument("product_code")
@_product_options
@click.pass_obj
def products_add(
    endpoint: str, /, product_code: str, entry_json: str | None, as_json: bool, **options: Any
) -> None:
    """Add the product PRODUCT_CODE (--seller, --kind and --dimension at least)."""
    entry = {**_entry(entry_json), "product_code": product_code, **_product_changes(options)}
    with admin_session(endpoint) as admin:
        _show(admin.products.add(entry), as_json)


@products.command("update")
@click.argument("product_code")
@_product_options
@click.pass_obj
def products_update(
    endpoint: str, /, product_code: str, entry_json: str | None, as_json: bool, **options: Any
) -> None:
    """Change fields of PRODUCT_CODE; the others keep their values (--dimension replaces
    every dimension)."""
    with admin_session(endpoint) as admin:
        current = admin.products.get(product_code)
        entry = {**current, **_entry(entry_json), **_product_changes(options)}
        _show(admin.products.replace(product_code, entry), as_json)


@products.command("remove")
@click.argument("product_code")
@click.pass_obj
def products_remove(endpoint: str, product_code: str) -> None:
    """Delete PRODUCT_CODE (not while it has agreements)."""
    with admin_session(endpoint) as admin:
        admin.products.remove(product_code)
    click.echo(f"removed product {product_code}")


# --- buyers ---------------------------------------------------------------------------------------


@click.group()
@endpoint_options
@click.pass_context
def buyers(ctx: click.Context, endpoint: str) -> None:
    """Buyers of a running server's catalog, and their access keys."""
    ctx.obj = endpoint


@buyers.command("list")
@_json_option
@click.pass_obj
def buyers_list(endpoint: str, as_json: bool) -> None:
    """List the buyers."""
    with admin_session(endpoint) as admin:
        found = admin.buyers.list()
    if as_json:
        print_json(found)
        return
    header = ("ACCOUNT ID", "CUSTOMER IDENTIFIER", "NAME", "ACCESS KEYS")
    rows = [
        (b["account_id"], _cell(b["customer_identifier"]), _cell(b["name"]), _key_ids(b))
        for b in found
    ]
    click.echo(_table(header, rows, "buyer"))


@buyers.command("add")
@click.argument("account_id")
@click.option("--customer-identifier", help="The legacy CustomerIdentifier.")
@click.option("--name", help="A name for people.")
@_entry_option("buyer")
@_json_option
@click.pass_obj
def buyers_add(
    endpoint: str,
    account_id: str,
    customer_identifier: str | None,
    name: str | None,
    entry_json: str | None,
    as_json: bool,
) -> None:
    """Add the buyer ACCOUNT_ID (12 digits)."""
    given = _given(customer_identifier=customer_identifier, name=name)
    entry = {**_entry(entry_json), "account_id": account_id, **given}
    with admin_session(endpoint) as admin:
        _show(admin.buyers.add(entry), as_json)


_accounts(buyers, lambda admin: admin.buyers, "buyer")

CATALOG_COMMANDS: tuple[click.Command, ...] = (sellers, products, buyers)
