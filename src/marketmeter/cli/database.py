"""``marketmeter db migrate|copy``: the ledger's database itself (its schema; a whole copy into
another database, e.g. SQLite into PostgreSQL)."""

from __future__ import annotations

import click

from marketmeter.cli.connection import db_option, open_database
from marketmeter.cli.progress import progress
from marketmeter.store.copy import CopyRefused, copy_ledger, copy_size

__all__ = ["db"]


@click.group()
def db() -> None:
    """The ledger's database: migrate it, copy it into another (e.g. SQLite → PostgreSQL)."""


@db.command("migrate")
@db_option
def db_migrate(db: str) -> None:
    """Bring the database's schema up to this marketmeter's (refuses a newer schema)."""
    store = open_database(db)  # opening migrates
    try:
        version = store.schema_version()
    finally:
        store.close_now()
    click.echo(f"{store.describe()}: schema version {version}")


@db.command("copy")
@click.option("--from", "source_url", required=True, help="The ledger to copy (path or URL).")
@click.option("--to", "target_url", required=True, help="An empty ledger (path or URL).")
def db_copy(source_url: str, target_url: str) -> None:
    """Copy a whole ledger: catalog, tokens, keys, registrations, claims, billed records.

    Rows go over in batches, read page by page (constant memory); a progress bar runs on
    stderr when it is a terminal."""
    source = open_database(source_url)
    try:
        target = open_database(target_url)
        try:
            with progress(copy_size(source), "copying") as bar:
                report = copy_ledger(source, target, bar.update)
        except CopyRefused as error:
            raise click.ClickException(str(error)) from None
        finally:
            target.close_now()
    finally:
        source.close_now()
    click.echo(f"{report.describe()}\n  from {source.describe()}\n  to   {target.describe()}")
