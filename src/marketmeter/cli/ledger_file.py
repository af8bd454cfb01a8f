"""The database a command names (``--db``, ``db copy --from/--to``, ``serve --db``), checked
before it is opened: a SQLite path that cannot hold a ledger is refused in one line, a command
that only reads never creates one, and a file a failed command created is removed.

PostgreSQL URLs are not files: their errors are the connection's, as one line."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from marketmeter.store.base import OperatorStore

__all__ = ["LedgerFile", "hide_password"]

_SIDE_FILES = ("-wal", "-shm", "-journal", "-catalog")  # "-catalog": its catalog stamp


def hide_password(url: str) -> str:
    """``url`` with the password of its user (``user:password@``) replaced by ``***``."""
    return re.sub(r"^(\w+://[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass(slots=True)
class LedgerFile:
    """The ledger at ``url`` as named by ``option``."""

    url: str
    option: str
    _created: bool = field(default=False, init=False)

    def _fail(self, what: str) -> click.ClickException:
        one_line = " ".join(part.strip() for part in what.splitlines() if part.strip())
        return click.ClickException(f"{self.option} {hide_password(self.url)}: {one_line}")

    def path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL (one line for a URL nothing here reads)."""
        from marketmeter.store.open import UnsupportedDatabase, is_postgres, sqlite_path

        if is_postgres(self.url):
            return None
        try:
            return Path(sqlite_path(self.url))
        except UnsupportedDatabase as error:
            raise self._fail(str(error)) from None

    def check(self, *, reads: bool) -> None:
        """Refuse, in one line, a path where no ledger can be (or, if the command ``reads``
        only, where none is)."""
        if not self.url.strip():
            raise self._fail("give a file path, e.g. marketmeter.db")
        path = self.path()
        if path is None:
            return
        if path.is_dir():
            raise self._fail(
                f"is a directory: give a file in it, e.g. {self.option} {path / 'marketmeter.db'}"
            )
        if path.exists():
            if not os.access(path, os.R_OK | (0 if reads else os.W_OK)):
                raise self._fail("permission denied: give a file you can read and write")
            return
        parent = path.parent
        if not parent.is_dir():
            raise self._fail(
                f"the directory {parent} does not exist: create it, or give another path"
            )
        if reads:
            raise self._fail(
                "no ledger there: check the path, run the command where `marketmeter serve` "
                "keeps its marketmeter.db, or give --endpoint URL"
            )
        if not os.access(parent, os.W_OK):
            raise self._fail(f"cannot create a file in {parent}: permission denied")

    def prepare(self, *, reads: bool = False) -> None:
        """``check``, and remember whether opening will create the file (``remove_if_created``
        removes it then)."""
        self.check(reads=reads)
        path = self.path()
        self._created = path is not None and not path.exists()

    def open(self, *, reads: bool = False) -> OperatorStore:
        """The store, migrated; one line if it cannot be opened (a file created for it is
        removed again)."""
        from marketmeter.store.open import open_store

        self.prepare(reads=reads)
        try:
            return open_store(self.url)
        except Exception as error:
            line = self.failure(error)
            if line is None:
                raise
            self.remove_if_created()
            raise line from None

    def failure(self, error: Exception) -> click.ClickException | None:
        """The line for an error of opening this ledger, or None if it is not one of those."""
        from marketmeter.store.base import SchemaError
        from marketmeter.store.open import UnsupportedDatabase

        if isinstance(error, UnsupportedDatabase | SchemaError):
            return self._fail(str(error))
        if isinstance(error, sqlite3.DatabaseError):
            return self._fail(f"not a marketmeter ledger ({error})")
        if type(error).__module__.startswith("psycopg"):  # without importing psycopg here
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            return self._fail(f"cannot connect ({reason}): check the URL and that PostgreSQL runs")
        return None

    def remove_if_created(self) -> None:
        """Remove the SQLite file (and its journal files) if ``open`` created it."""
        path = self.path()
        if not self._created or path is None:
            return
        for name in ("", *_SIDE_FILES):
            Path(f"{path}{name}").unlink(missing_ok=True)
        self._created = False
