"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, started as a process
on 127.0.0.1 (and a Unix socket) with a data directory in a fresh temporary directory.

Never a silent pass: if the binaries are missing or the server does not come up, ``start``
raises with the reason and the server's log. As root (CI), initdb and postgres run as the
``postgres`` user the Debian package creates, since PostgreSQL refuses to run as root.

``shared_server()`` is one server for the whole test process, started on first use and stopped
at interpreter exit; ``database(name)`` gives a named database on it, created on first use (the
end-to-end suite on PostgreSQL derives the name from each ledger's file path).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tests.ports import free_port

__all__ = ["PostgresServer", "postgres_bin_dir", "shared_server"]

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_bin_dir() -> Path:
    """Where initdb and postgres live (Debian keeps them out of PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL is not installed: no initdb in /usr/lib/postgresql/*/bin or PATH "
        "(apt-get install postgresql; .ci/run does)"
    )


class PostgresServer:
    """One throwaway cluster; ``url`` connects as the superuser ``postgres`` over TCP."""

    def __init__(self, fsync: bool = False) -> None:
        self.bin = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="marketmeter-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None
        self._databases: set[str] = set()
        self._databases_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", "postgres", "--", *args]

    def start(self, timeout: float = 30.0) -> PostgresServer:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        initdb = subprocess.run(
            self._as_owner(
                [
                    *(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"),
                    *("-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"),
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        self.launch(timeout)
        return self

    def launch(self, timeout: float = 30.0) -> float:
        """Start the postmaster on the existing data directory (after a crash: its recovery);
        seconds until it accepts connections. Raises with the log if it does not come up."""
        started = time.monotonic()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on" if self.fsync else "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        args = [str(self.bin / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._as_owner(args), stdout=log, stderr=subprocess.STDOUT
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log.read_text()}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return time.monotonic() - started
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"postgres did not accept connections:\n{self.log.read_text()}")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def fresh_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def database(self, name: str) -> str:
        """The URL of the database ``name`` (lower case letters, digits, ``_``), created empty
        on first use: every call with one name reaches the same database."""
        import psycopg
        from psycopg import errors

        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain PostgreSQL database name: {name!r}")
        with self._databases_lock:
            if name not in self._databases:
                with (
                    psycopg.connect(self.url, autocommit=True) as connection,
                    contextlib.suppress(errors.DuplicateDatabase),
                ):
                    connection.execute(f'CREATE DATABASE "{name}"')
                self._databases.add(name)
        return self.database_url(name)

    def _postmaster_pid(self) -> int | None:
        """The postmaster's process id (under runuser it is not ``self.process``)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, fast: bool = True) -> None:
        """Stop the server and remove its directory. ``fast``: a fast shutdown (SIGINT, sent to
        the postmaster itself, since runuser does not pass SIGINT on) that disconnects the
        clients still connected instead of waiting for them."""
        if self.process is not None and self.process.poll() is None:
            postmaster = self._postmaster_pid() if fast else None
            if postmaster is not None:
                os.kill(postmaster, signal.SIGINT)
            else:
                self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if postmaster is not None:
                    os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresServer | None = None
_shared_failure: str | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """One PostgreSQL server for this whole test process: started on first use, stopped (fast:
    any client left connected is cut off) when the interpreter exits. Raises with the reason if
    it cannot start, on this call and every later one."""
    global _shared, _shared_failure
    with _shared_lock:
        if _shared is not None:
            return _shared
        if _shared_failure is not None:
            raise RuntimeError(f"the shared PostgreSQL server did not start: {_shared_failure}")
        server: PostgresServer | None = None
        try:
            server = PostgresServer()
            server.start()
        except Exception as error:
            if server is not None:
                server.stop(fast=True)
            _shared_failure = str(error)
            raise
        atexit.register(server.stop, fast=True)
        _shared = server
        return server
