"""How every command prints: one JSON printer, one table printer, one ``field  value`` listing.

Tables are aligned columns under a header row and end with a count line (``3 seller(s)``);
``--json`` prints the operator's JSON value instead, indented. Every list is a ``table`` (with
``json_option``); ``lines`` is for a command's report of what it did, never for a list
(docs/architecture.md, "CLI conventions").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
import orjson

__all__ = ["cell", "fields", "json_option", "lines", "print_json", "table"]

json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")


def print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def cell(value: Any) -> str:
    """A value as a table cell: ``-`` for nothing, lists comma-separated, objects as JSON."""
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(cell(item) for item in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], noun: str, footer: str = "") -> str:
    """``rows`` under ``header`` in aligned columns, then ``N noun(s)`` (and ``footer``)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.append(f"{len(rows)} {noun}(s){footer}")
    return "\n".join(lines)


def lines(
    value: Any, items: Sequence[Any], line: Callable[[Any], str], none: str, as_json: bool
) -> None:
    """``value`` as JSON, or one ``line`` per item of ``items`` (``none`` if there are none):
    a report of what a command did. A list is a ``table``."""
    if as_json:
        print_json(value)
        return
    for item in items:
        click.echo(line(item))
    if not items:
        click.echo(none)


def fields(entry: dict[str, Any]) -> str:
    """One ``field  value`` line per field of an entry (access keys by id)."""
    shown = {
        name: [k["access_key_id"] for k in value] if name == "access_keys" else value
        for name, value in entry.items()
    }
    width = max(len(name) for name in shown)
    return "\n".join(
        f"{name.ljust(width)}  {cell(value)}".rstrip() for name, value in shown.items()
    )
