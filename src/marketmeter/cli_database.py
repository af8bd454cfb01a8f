"""How CLI commands reach the ledger: the shared ``--db`` option and opening the store.

Every command that touches the database takes ``--db`` (default ``marketmeter.db`` in the
current directory, or ``$MARKETMETER_DB``), so the CLI and a running server share one ledger.
"""

from __future__ import annotations

import click

from marketmeter.config import DEFAULT_DB
from marketmeter.store.base import OperatorStore, SchemaError
from marketmeter.store.open import UnsupportedDatabase, open_store

__all__ = ["db_option", "open_database"]

db_option = click.option(
    "--db",
    envvar="MARKETMETER_DB",
    show_envvar=True,
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite file or URL (sqlite:///path), or postgresql://...",
)


def open_database(db: str) -> OperatorStore:
    """The store at ``db``, or a clean CLI error saying why it cannot be used."""
    try:
        return open_store(db)
    except (UnsupportedDatabase, SchemaError) as error:
        raise click.ClickException(str(error)) from None
