"""The command line's conventions (docs/architecture.md, "CLI conventions"), over every command
there is, so a command added later is held to them too: each ``COMMANDS`` entry resolves to
its command, every command and group answers ``-h``, and every list takes ``--json``."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from marketmeter.cli import COMMANDS, main

LISTS = {"list", "events", "journal"}  # commands that print a list of things


def walk(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


EVERY = dict(walk(main))


def test_every_entry_of_the_table_is_its_command() -> None:
    for name in COMMANDS:
        assert EVERY[(name,)].name == name


@pytest.mark.parametrize("path", sorted(EVERY), ids=" ".join)
def test_every_command_answers_dash_h(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "-h"], prog_name="marketmeter")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: marketmeter {' '.join(path)} ")


def test_every_list_has_json() -> None:
    lists = [path for path in EVERY if path[-1] in LISTS]
    assert len(lists) >= 10
    for path in lists:
        options = {name for p in EVERY[path].params for name in getattr(p, "opts", [])}
        assert "--json" in options, " ".join(path)
