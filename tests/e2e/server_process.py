"""A real ``marketmeter serve`` process on 127.0.0.1, for the end-to-end tests.

The backend switch: by default a ledger is the SQLite file at its path. With
``MARKETMETER_TEST_DB=postgresql`` it is a database of the shared test PostgreSQL server
(tests/postgres_server.py) named after that path, so one path is one ledger on either backend:
``ledger_url(path)`` is what ``--db`` takes, and ``ServerProcess.db_url`` its server's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.postgres_server import shared_server

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"
BACKEND_SWITCH = "MARKETMETER_TEST_DB"
WORKERS_SWITCH = "MARKETMETER_TEST_SERVE_WORKERS"


def on_postgres() -> bool:
    """Whether this run's ledgers are PostgreSQL databases (``MARKETMETER_TEST_DB``)."""
    backend = os.environ.get(BACKEND_SWITCH, "")
    if backend not in ("", "sqlite", "postgresql"):
        raise ValueError(f"{BACKEND_SWITCH}={backend!r}: expected sqlite or postgresql")
    return backend == "postgresql"


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Skip a test that is about SQLite files themselves when the run is on PostgreSQL."""
    return pytest.mark.skipif(on_postgres(), reason=f"SQLite only: {reason}")


def ledger_url(db: Path) -> str:
    """What ``--db`` takes for the ledger at ``db``: the path itself, or on PostgreSQL the URL
    of a database named after the path (created on first use; the same path, the same one)."""
    if not on_postgres():
        return str(db)
    digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()
    return shared_server().database(f"mm_{digest[:32]}")


class ServerProcess:
    """Start, stop and restart ``marketmeter serve`` on one ledger: the one at ``db``
    (``ledger_url``), or the database ``db_url`` when given (its log is still next to ``db``)."""

    def __init__(
        self, db: Path, catalog: Path | None = CATALOG, *extra: str, db_url: str | None = None
    ) -> None:
        self.db = db
        self.db_url = ledger_url(db) if db_url is None else db_url
        self.catalog = catalog
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Start the server and wait until it answers. "It" is this process: should something
        else hold the port (``free_port`` rules out our own starts and client sockets, not
        other programs), the server that loses the bind exits only after the winner answers
        health checks; so the server must also have printed, since this start, that it is
        ready on this port."""
        args = [sys.executable, "-m", "marketmeter", "serve", "--port", str(self.port)]
        args += ["--db", self.db_url]
        if self.catalog is not None:
            args += ["--catalog", str(self.catalog)]
        if "--workers" not in self.extra:
            # one process starts fastest; test_workers.py serves with several, and
            # MARKETMETER_TEST_SERVE_WORKERS=N runs every end-to-end test on N workers
            args += ["--workers", os.environ.get(WORKERS_SWITCH, "1")]
        args += list(self.extra)
        logged_before = self.log.stat().st_size if self.log.exists() else 0
        ready = f":{self.port}/_marketmeter/health".encode()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"marketmeter exited early:\n{self.log.read_text()}")
            if not self._logged_ready(logged_before, ready):
                time.sleep(0.05)
                continue
            try:
                with urllib.request.urlopen(f"{self.url}/_marketmeter/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"marketmeter did not become healthy:\n{self.log.read_text()}")

    def _logged_ready(self, offset: int, ready: bytes) -> bool:
        """Whether the log, past ``offset``, has the banner's ``Ready: GET ...`` line."""
        with self.log.open("rb") as log:
            log.seek(offset)
            return any(
                line.startswith(b"Ready: GET ") and line.rstrip().endswith(ready) for line in log
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log.read_text()
