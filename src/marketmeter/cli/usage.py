"""``marketmeter usage list|summary|export``: what has been billed, on the database (``--db``,
the default) or a running server (``--endpoint``): record by record or summed per window and
group, as a table or the operator's JSON, or exported as CSV or JSON Lines (records, or totals
per window) streamed with a progress bar on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from marketmeter.cli.connection import refusal_line, service, target_options
from marketmeter.cli.output import json_option, print_json, table
from marketmeter.cli.progress import progress
from marketmeter.metering.quantities import plain
from marketmeter.operator.usage import GROUPS, WINDOWS, usage_query
from marketmeter.operator.usage_export import EXPORT_FORMATS, export_request
from marketmeter.operator.usage_summary import GROUP_KEYS, summary_query
from marketmeter.operator.usage_summary import WINDOWS as SUMMARY_WINDOWS
from marketmeter.refusal import Refusal

__all__ = ["usage"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def usage() -> None:
    """What has been billed."""


# The options that select billed records, the same on every usage command, in this order.
_RECORD_FILTERS = (
    click.option("--product", help="Only this product code."),
    click.option("--customer", help="Only this customer: AWS account id or CustomerIdentifier."),
    click.option("--dimension", help="Only this dimension."),
    click.option("--from", "start", help="Usage at or after this time (ISO 8601 or epoch)."),
    click.option("--to", "end", help="Usage before this time (ISO 8601 or epoch)."),
)


def record_filters(command: F) -> F:
    """``command`` with the options that select billed records (``_RECORD_FILTERS``)."""
    for option in reversed(_RECORD_FILTERS):
        command = option(command)
    return command


@usage.command("list")
@target_options()
@record_filters
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
    filters = _checked(
        usage_query,
        {},
        product=product,
        customer=customer,
        dimension=dimension,
        start=start,
        end=end,
        limit=limit,
    )
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


@usage.command("export")
@target_options()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="csv",
    show_default=True,
    help="CSV (a header line, then a line per record) or JSON Lines.",
)
@record_filters
@click.option(
    "--window",
    type=click.Choice(WINDOWS),
    help="Export totals per window (UTC) instead of records.",
)
@click.option(
    "--group",
    type=click.Choice(GROUPS),
    multiple=True,
    help="A key of the totals (repeatable; with --window). Product and dimension are always "
    "keys: totals are never summed across dimensions. customer splits them per customer.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Write here instead of standard output.",
)
def usage_export(
    fmt: str,
    product: str | None,
    customer: str | None,
    dimension: str | None,
    start: str | None,
    end: str | None,
    window: str | None,
    group: tuple[str, ...],
    output: Path | None,
) -> None:
    """Export billed usage as CSV or JSON Lines, streamed in constant memory.

    Records come in the order they were billed; with --window, quantities summed per window,
    product, dimension (and customer with --group customer). A progress bar runs on stderr
    when it is a terminal.
    """
    if group and not window:
        raise click.BadParameter("needs --window", param_hint="'--group'")
    filters = _checked(
        export_request,
        {"from": "'--from'", "to": "'--to'"},
        format=fmt,
        product=product,
        customer=customer,
        dimension=dimension,
        start=start,
        end=end,
        window=window,
        group=",".join(group) or None,
    )
    with service(reads=True) as where, where.export(filters) as exported:
        if output is None:
            _write(exported.size, exported.chunks, sys.stdout.buffer)
        else:
            with output.open("wb") as out:
                _write(exported.size, exported.chunks, out)
    if output is not None:
        what = "total" if window else "record"
        click.echo(f"{exported.size} {what}(s) exported to {output}", err=True)


def _write(size: int, chunks: Iterator[tuple[bytes, int]], out: BinaryIO) -> None:
    with progress(size, "exporting") as bar:
        for data, rows in chunks:
            out.write(data)
            bar.update(rows)
    out.flush()


@usage.command("summary")
@target_options()
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    type=click.Choice(GROUP_KEYS),
    help="A key besides the dimension (always one); repeat for several.",
)
@click.option(
    "--window",
    type=click.Choice(SUMMARY_WINDOWS),
    default="day",
    show_default=True,
    help="UTC windows.",
)
@record_filters
@click.option("--limit", default="10000", show_default=True, help="At most this many rows.")
@json_option
def usage_summary(
    group_by: tuple[str, ...],
    window: str,
    product: str | None,
    customer: str | None,
    dimension: str | None,
    start: str | None,
    end: str | None,
    limit: str,
    as_json: bool,
) -> None:
    """Billed quantities summed per window and group, then a total per dimension."""
    filters = _checked(
        summary_query,
        {},
        groupBy=",".join(group_by) or None,
        window=window,
        product=product,
        customer=customer,
        dimension=dimension,
        start=start,
        end=end,
        limit=limit,
    )
    with service(reads=True) as operator:
        found = operator.usage_summary(filters)
    if as_json:
        print_json(found)
        return
    columns = {
        "product": ("productCode", "PRODUCT"),
        "customer": ("customerAWSAccountId", "CUSTOMER"),
    }
    shown = [columns[key] for key in found["groupBy"] if key in columns]
    header = ("WINDOW (UTC)", *(title for _, title in shown), "DIMENSION", "QUANTITY", "RECORDS")
    rows = [
        (
            r["windowStart"],
            *(str(r[field]) for field, _ in shown),
            r["dimension"],
            plain(Decimal(str(r["quantity"]))),
            str(r["records"]),
        )
        for r in found["rows"]
    ]
    more = " (more rows: raise --limit or narrow the filters)" if found["truncated"] else ""
    click.echo(table(header, rows, "row", more))
    for total in found["totals"]:
        product_code = f"{total['productCode']} " if "productCode" in total else ""
        quantity = plain(Decimal(str(total["quantity"])))
        click.echo(
            f"total {product_code}{total['dimension']}: {quantity} ({total['records']} record(s))"
        )


def _checked(
    check: Callable[[dict[str, str]], object], hints: dict[str, str], **given: str | None
) -> dict[str, str]:
    """The options given (``start`` and ``end`` as the filters ``from`` and ``to``), checked by
    ``check`` before anything is opened: a refusal is one line."""
    renamed = {"start": "from", "end": "to"}
    filters = {renamed.get(k, k): v for k, v in given.items() if v is not None}
    try:
        check(filters)
    except Refusal as error:
        raise refusal_line(error, hints) from None
    return filters
