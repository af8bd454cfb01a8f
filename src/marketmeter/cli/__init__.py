"""The ``marketmeter`` command, one module per subject: ``serve``; ``catalog``, ``sellers``,
``products``, ``offers``, ``buyers`` (``cli.catalog``); ``subscribe``, ``agreements``, ``events``
(``cli.agreements``); ``deliveries`` (``cli.deliveries``); ``token``, ``keys``
(``cli.tokens``); ``usage`` (``cli.usage``);
``clock``, ``faults``, ``journal``, ``reset``, ``snapshot`` (``cli.bench``); ``db``
(``cli.database``).

Every command is a front end of the operator service (``marketmeter.operator``), reached on a
running server (``--endpoint``) or straight on a database (``--db``) through ``cli.connection``;
they print through ``cli.output``.
"""

from __future__ import annotations

import click

from marketmeter import __version__
from marketmeter.cli.agreements import agreements, events, subscribe
from marketmeter.cli.bench import BENCH_COMMANDS
from marketmeter.cli.catalog import CATALOG_COMMANDS
from marketmeter.cli.database import db
from marketmeter.cli.deliveries import deliveries
from marketmeter.cli.serve import serve
from marketmeter.cli.tokens import keys, token
from marketmeter.cli.usage import usage

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter: the AWS Marketplace Metering Service, self-hosted."""


for command in (
    serve,
    *CATALOG_COMMANDS,
    subscribe,
    agreements,
    events,
    deliveries,
    token,
    keys,
    usage,
    *BENCH_COMMANDS,
    db,
):
    main.add_command(command)
