"""The ``marketmeter`` command, one module per subject: ``serve``; ``catalog``, ``sellers``,
``products``, ``offers``, ``buyers`` (``cli.catalog``); ``subscribe``, ``agreements``, ``events``
(``cli.agreements``); ``deliveries`` (``cli.deliveries``); ``token``, ``keys``
(``cli.tokens``); ``usage`` (``cli.usage``);
``clock``, ``faults``, ``journal``, ``reset``, ``snapshot`` (``cli.bench``); ``db``
(``cli.database``).

Every command is a front end of the operator service (``marketmeter.operator``), reached on a
running server (``--endpoint``) or straight on a database (``--db``) through ``cli.connection``;
they print through ``cli.output``. ``COMMANDS`` names each command's module and one-line help:
a command's module is imported only when that command runs, so ``marketmeter --help`` and
``--version`` import click and nothing else (docs/architecture.md, "CLI conventions").
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from marketmeter import __version__

__all__ = ["COMMANDS", "main"]

# httpx imports its own command line (rich, pygments: 0.15 s) whenever they are installed, as
# in a development environment; no marketmeter command runs it
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

#: name -> (module under marketmeter.cli, attribute, the line ``marketmeter --help`` shows).
#: tests/cli/test_conventions.py checks that each resolves to its command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("serve", "serve", "Serve the Metering Service and the admin API."),
    "catalog": ("catalog", "catalog", "The catalog: apply a file, show it, print the demo."),
    "sellers": ("catalog", "sellers", "Sellers and their access keys."),
    "products": ("catalog", "products", "Products and their dimensions."),
    "offers": ("catalog", "offers", "Offers of products and their terms."),
    "buyers": ("catalog", "buyers", "Buyers and their access keys."),
    "subscribe": ("agreements", "subscribe", "Play the buyer: subscribe to a product."),
    "agreements": ("agreements", "agreements", "Agreements and their lifecycle."),
    "events": ("agreements", "events", "The lifecycle notifications sent, newest last."),
    "deliveries": ("deliveries", "deliveries", "Notification deliveries per target."),
    "token": ("tokens", "token", "Registration tokens."),
    "keys": ("tokens", "keys", "RegisterUsage public keys."),
    "usage": ("usage", "usage", "What has been billed."),
    "clock": ("bench", "clock", "The service clock of a running server."),
    "faults": ("bench", "faults", "Fault rules of a running server."),
    "journal": ("bench", "journal", "The calls a running server answered."),
    "reset": ("bench", "reset", "Empty the ledger; clock, faults and journal back."),
    "snapshot": ("bench", "snapshot", "Save and restore the whole state by name."),
    "db": ("database", "db", "The ledger's database: migrate it, copy it into another."),
}


class UsageLine(click.ClickException):
    """A usage error as one line, with where to read the command's help (exit 2)."""

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        hint = ""
        if error.ctx is not None:
            help_option = min(error.ctx.help_option_names, key=len, default="--help")
            hint = f" (see '{error.ctx.command_path} {help_option}')"
        super().__init__(f"{error.format_message().rstrip('.')}{hint}")


class LazyGroup(click.Group):
    """A group whose commands are imported from ``COMMANDS`` when one is asked for, and
    whose usage errors (and its subcommands') print as one line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise UsageLine(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise UsageLine(error) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"marketmeter.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, COMMANDS[name][2])
            if name in COMMANDS
            else (name, self.commands[name].get_short_help_str(formatter.width))
            for name in self.list_commands(ctx)
            if name in COMMANDS or not self.commands[name].hidden
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter: the AWS Marketplace Metering Service, self-hosted.

    Each command has -h; lists print an aligned table, or JSON with --json. Commands on the
    ledger act on a database (--db) or a running server (--endpoint)."""
