"""A real ``marketmeter serve`` on a fresh ledger, for the reliability runs' ``main``.

Uses the test tree's server process and PostgreSQL helper, as ``bench/`` does: SQLite in a
temporary directory, or a fresh database of the shared test PostgreSQL server.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.server_process import ServerProcess

__all__ = ["BACKENDS", "served"]

BACKENDS = ("sqlite", "postgresql")


@contextmanager
def served(backend: str, prefix: str) -> Iterator[ServerProcess]:
    """``serve`` with tests/data/catalog.yaml on an empty ``backend`` ledger, stopped on exit."""
    from tests.e2e.server_process import ServerProcess
    from tests.postgres_server import shared_server

    with tempfile.TemporaryDirectory(prefix=prefix) as work:
        db = Path(work) / "ledger.db"
        db_url = shared_server().fresh_database() if backend == "postgresql" else str(db)
        server = ServerProcess(db, db_url=db_url).start()
        try:
            yield server
        finally:
            server.stop()
