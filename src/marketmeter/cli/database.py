"""``marketmeter db migrate|copy``: the ledger's database itself (its schema; a whole copy into
another database, e.g. SQLite into PostgreSQL)."""

from __future__ import annotations

import click

from marketmeter.cli.connection import db_option
from marketmeter.cli.ledger_file import LedgerFile
from marketmeter.cli.progress import progress

__all__ = ["db"]


@click.group()
def db() -> None:
    """The ledger's database: migrate it, copy it into another (e.g. SQLite → PostgreSQL)."""


@db.command("migrate")
@db_option
def db_migrate(db: str) -> None:
    """Bring the database's schema up to this marketmeter's (refuses a newer schema)."""
    store = LedgerFile(db, "--db").open(reads=True)  # opening migrates; never creates a file
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
    from marketmeter.store.copy import CopyRefused, copy_ledger, copy_size

    if source_url == target_url:
        raise click.BadParameter("is the ledger of --from: give another", param_hint="'--to'")
    source_file, target_file = LedgerFile(source_url, "--from"), LedgerFile(target_url, "--to")
    target_file.check(reads=False)  # both refused before either is opened
    source = source_file.open(reads=True)
    try:
        target = target_file.open()
        try:
            with progress(copy_size(source), "copying") as bar:
                report = copy_ledger(source, target, bar.update)
        except CopyRefused as error:
            target.close_now()
            target_file.remove_if_created()
            raise click.ClickException(str(error)) from None
        target.close_now()
    finally:
        source.close_now()
    click.echo(f"{report.describe()}\n  from {source.describe()}\n  to   {target.describe()}")
