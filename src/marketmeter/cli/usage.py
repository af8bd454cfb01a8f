"""``marketmeter usage list``: what has been billed, on the database (``--db``, the default) or
a running server (``--endpoint``), as a table or the operator's JSON."""

from __future__ import annotations

from decimal import Decimal

import click

from marketmeter.cli.connection import refusal_line, service, target_options
from marketmeter.cli.output import json_option, print_json, table
from marketmeter.metering.quantities import plain
from marketmeter.operator.usage import usage_query
from marketmeter.refusal import Refusal

__all__ = ["usage"]


@click.group()
def usage() -> None:
    """What has been billed."""


@usage.command("list")
@target_options()
@click.option("--product", help="Only this product code.")
@click.option("--customer", help="Only this customer: AWS account id or CustomerIdentifier.")
@click.option("--dimension", help="Only this dimension.")
@click.option("--from", "start", help="Usage at or after this time (ISO 8601 or epoch).")
@click.option("--to", "end", help="Usage before this time (ISO 8601 or epoch).")
@click.option("--limit", default="1000", show_default=True, help="At most this many records.")
@json_option
def usage_list(
    product: str | None,
    customer: str | None,
    dimension: str | None,
    start: str | None,
    end: str | None,
    limit: str,
    as_json: bool,
) -> None:
    """List billed usage records, oldest usage first."""
    given = {
        "product": product,
        "customer": customer,
        "dimension": dimension,
        "from": start,
        "to": end,
        "limit": limit,
    }
    filters = {k: v for k, v in given.items() if v is not None}
    try:
        usage_query(filters)  # refused before anything is opened
    except Refusal as error:
        raise refusal_line(error, {}) from None
    with service(reads=True) as operator:
        found = operator.usage(filters)
    if as_json:
        print_json(found)
        return
    records = found["records"]
    header = ("HOUR (UTC)", "PRODUCT", "CUSTOMER", "DIMENSION", "QUANTITY", "METERING RECORD ID")
    quantities = [Decimal(str(r["quantity"])) for r in records]
    rows = [
        (
            r["hour"],
            r["productCode"],
            r["customerIdentifier"] or r["customerAWSAccountId"],
            r["dimension"],
            plain(quantity),
            r["meteringRecordId"],
        )
        for r, quantity in zip(records, quantities, strict=True)
    ]
    totals: dict[tuple[str, str], Decimal] = {}
    for r, quantity in zip(records, quantities, strict=True):
        key = (r["productCode"], r["dimension"])
        totals[key] = totals.get(key, Decimal(0)) + quantity
    click.echo(table(header, rows, "record"))
    if totals:  # one total per dimension of a product: never across dimensions
        click.echo(
            table(
                ("PRODUCT", "DIMENSION", "TOTAL QUANTITY"),
                [(p, d, plain(total)) for (p, d), total in sorted(totals.items())],
                "dimension",
            )
        )
