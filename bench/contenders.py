"""The contenders: the server setups the bench measures (moto, marketmeter on SQLite or
PostgreSQL), each making a fresh state per run, and the cached SQLite ledgers they start from
(the bench catalog, optionally pre-filled with billed rows)."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from bench import bulk_ledger
from bench.make_catalog import parts as make_catalog_parts
from bench.processes import ROOT, probe, probe_meter_usage, run_command
from bench.report import DIMENSIONS, key_space, say
from bench.signed_requests import write_signed_requests

BATCH_LOAD = ROOT / "bench" / "batch_load.lua"
SIGNED_LOAD = ROOT / "bench" / "signed_load.lua"
METER_USAGE_LOAD = ROOT / "bench" / "meter_usage_load.lua"
# Requests signed ahead for a strict-auth run, per second of load (above any rate measured),
# at most the load's key space: a longer run sends them again, as the other loads do.
SIGNED_PER_SECOND = 8000

__all__ = [
    "Contender",
    "MeterUsageContender",
    "MotoContender",
    "PostgresContender",
    "SQLiteContender",
    "StrictSQLiteContender",
    "copy_ledger",
    "filled_ledger",
    "postgres_available",
    "remove_ledger",
    "template_ledger",
]


class Contender:
    """One server setup: ``prepare`` makes a fresh state and returns the command serving it."""

    name = ""
    health_path = "/_marketmeter/health"
    load_script = BATCH_LOAD
    records_per_request = 25  # what one 2xx answer bills
    distinct_keys = False  # whether every request bills a new key, however long the run
    workers: int | None = None  # marketmeter's serve --workers (None: serve's default)

    def prepare(self, port: int) -> list[str]:
        raise NotImplementedError

    def probe(self, port: int, buyers: int) -> None:
        """Bill one record the load never sends; ``RuntimeError`` unless it is billed."""
        probe(port, f"c{buyers}", signed=self.signed)

    def load_env(self) -> dict[str, str]:
        """What the load script needs besides the key walk's settings."""
        return {}

    @property
    def signed(self) -> bool:
        """Whether requests must carry a valid SigV4 signature (the probe's too)."""
        return False

    def database_pid(self) -> int | None:
        """The root of the database server's processes, when it runs apart from the server."""
        return None

    def billed_rows_since(self, hour: int) -> int | None:
        """After a run, its server stopped: the ledger's rows of ``hour`` and later (None: the
        contender keeps no ledger to count)."""
        return None

    def cleanup(self) -> None:
        """After a run: drop its state."""

    def close(self) -> None:
        """After the contender's last run."""


class MotoContender(Contender):
    """moto's server as shipped (``moto``: a list scan per record) or with its subscription
    lookup made a set (``moto-fair``, the peer the targets are measured against)."""

    health_path = "/moto-api/"

    def __init__(self, customers: int, fair: bool = False) -> None:
        self.customers = customers
        self.fair = fair
        self.name = "moto-fair" if fair else "moto"

    def prepare(self, port: int) -> list[str]:
        argv = [sys.executable, "-m", "bench.moto_server", str(port), str(self.customers)]
        return [*argv, "--fair"] if self.fair else argv


class SQLiteContender(Contender):
    def __init__(self, name: str, sync: str, ledger: Path, work: Path) -> None:
        self.name = name
        self.sync = sync
        self.ledger = ledger
        self.work = work
        self._copy: Path | None = None
        self._runs = 0

    def prepare(self, port: int) -> list[str]:
        self._runs += 1
        self._copy = self.work / f"{self.name}-{self._runs}.db"
        copy_ledger(self.ledger, self._copy)
        return [
            *(sys.executable, "-m", "marketmeter", "serve", "--host", "127.0.0.1"),
            *("--port", str(port), "--db", str(self._copy), "--sync", self.sync),
            *workers_option(self.workers),
        ]

    def billed_rows_since(self, hour: int) -> int | None:
        assert self._copy is not None
        connection = sqlite3.connect(self._copy)
        try:
            query = "SELECT count(*) FROM usage_records WHERE hour >= ?"
            return int(connection.execute(query, (hour,)).fetchone()[0])
        finally:
            connection.close()

    def cleanup(self) -> None:
        if self._copy is not None:
            remove_ledger(self._copy)
            self._copy = None


class StrictSQLiteContender(SQLiteContender):
    """marketmeter on SQLite FULL with ``--auth sigv4``: every request's signature verified.
    Its load is pre-signed by botocore (``bench/signed_requests.py``) for the run's port."""

    load_script = SIGNED_LOAD

    def __init__(self, ledger: Path, work: Path, buyers: int, seconds: int) -> None:
        super().__init__("sqlite-strict", "full", ledger, work)
        self.buyers = buyers
        self.seconds = seconds
        self._signed_file = work / "signed-requests.txt"
        self._port = 0

    def prepare(self, port: int) -> list[str]:
        self._port = port
        started = time.monotonic()
        count = min(self.seconds * SIGNED_PER_SECOND, key_space(self.buyers))
        write_signed_requests(self._signed_file, port, self.buyers, DIMENSIONS, count)
        say(f"{self.name}: {count:,} requests signed in {time.monotonic() - started:.1f} s")
        return [*super().prepare(port), "--auth", "sigv4"]

    def load_env(self) -> dict[str, str]:
        return {"BENCH_SIGNED": str(self._signed_file), "BENCH_HOST": f"127.0.0.1:{self._port}"}

    @property
    def signed(self) -> bool:
        return True

    def cleanup(self) -> None:
        super().cleanup()
        self._signed_file.unlink(missing_ok=True)


class MeterUsageContender(SQLiteContender):
    """marketmeter on SQLite FULL answering MeterUsage (``bench/meter_usage_load.lua``): one
    record per request, each from a new instance of the bench's AMI buyer."""

    load_script = METER_USAGE_LOAD
    records_per_request = 1
    distinct_keys = True

    def __init__(self, ledger: Path, work: Path) -> None:
        super().__init__("sqlite-meter-usage", "full", ledger, work)

    def probe(self, port: int, buyers: int) -> None:
        probe_meter_usage(port)


class PostgresContender(Contender):
    name = "postgresql"

    def __init__(self, server: Any, template: str) -> None:
        self.server = server  # tests.postgres_server.PostgresServer
        self.template = template
        self._database: str | None = None
        self._runs = 0

    def prepare(self, port: int) -> list[str]:
        import psycopg

        self._runs += 1
        self._database = f"bench_run_{self._runs}"
        with psycopg.connect(self.server.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self._database}" TEMPLATE "{self.template}"')
        url = self.server.database_url(self._database)
        return [
            *(sys.executable, "-m", "marketmeter", "serve", "--host", "127.0.0.1"),
            *("--port", str(port), "--db", url),
            *workers_option(self.workers),
        ]

    def database_pid(self) -> int | None:
        process = self.server.process
        return None if process is None else int(process.pid)

    def billed_rows_since(self, hour: int) -> int | None:
        import psycopg

        assert self._database is not None
        with psycopg.connect(self.server.database_url(self._database)) as connection:
            query = "SELECT count(*) FROM usage_records WHERE hour >= %s"
            row = connection.execute(query, (hour,)).fetchone()
        return None if row is None else int(row[0])

    def cleanup(self) -> None:
        import psycopg

        if self._database is not None:
            with psycopg.connect(self.server.url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE "{self._database}" WITH (FORCE)')
            self._database = None

    def close(self) -> None:
        self.server.stop()


def workers_option(workers: int | None) -> list[str]:
    return [] if workers is None else ["--workers", str(workers)]


def postgres_available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


# --- ledgers -------------------------------------------------------------------------------


# A copied ledger at least this large is followed by a ``sync`` (a smoke run's are smaller: it
# measures nothing, and a ``sync`` beside the test suite's writes costs seconds).
SYNC_FROM_BYTES = 8 * 1024 * 1024


def copy_ledger(source: Path, target: Path) -> None:
    """Copy a closed SQLite ledger (and its WAL, if one was left), then write every dirty page
    of the machine to disk (``sync``) before the server starts: the kernel writing back a 2 GB
    copy, or what the previous run left, would otherwise hold up the server's own fsyncs for
    the first seconds of its run, a cost of the bench and not of the server."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + "-wal"))
    if target.stat().st_size >= SYNC_FROM_BYTES:
        os.sync()


def remove_ledger(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-catalog"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _fingerprint(buyers: int, *sources: Path) -> str:
    """What a cached ledger depends on: the SQLite schema, the catalog, the fill, the buyers."""
    from marketmeter.store.migrations import migrations_for

    digest = hashlib.sha256(str(buyers).encode())
    for migration in migrations_for("sqlite"):
        digest.update(migration.sql.encode())
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def template_ledger(cache: Path, buyers: int) -> Path:
    """A SQLite ledger holding the bench catalog (buyers c0..c<buyers>: one more than the load
    uses, for the probe), built once and cached."""
    make_catalog = ROOT / "bench" / "make_catalog.py"
    path = cache / f"template-b{buyers}-{_fingerprint(buyers, make_catalog)}.db"
    if path.exists():
        return path
    building = path.with_suffix(".building")
    remove_ledger(building)
    started = time.monotonic()
    for first, end in make_catalog_parts(buyers + 1):  # a file holds at most 20,000 entries
        catalog = cache / f"catalog-b{buyers}-{first}.yaml"
        argv = [sys.executable, str(make_catalog), str(buyers + 1), str(DIMENSIONS)]
        argv += [str(first), str(end)]
        catalog.write_text(run_command(argv))
        run_command(
            [
                *(sys.executable, "-m", "marketmeter", "catalog", "apply"),
                *("--db", str(building), str(catalog)),
            ]
        )
        catalog.unlink()
    building.rename(path)
    say(f"template ledger ({buyers + 1} buyers) built in {time.monotonic() - started:.1f} s")
    return path


def filled_ledger(cache: Path, template: Path, buyers: int, rows: int) -> Path:
    """The template with ``rows`` billed rows more, cached per row count."""
    if rows == 0:
        return template
    key = _fingerprint(buyers, template, Path(bulk_ledger.__file__))
    path = cache / f"ledger-b{buyers}-r{rows}-{key}.db"
    if path.exists():
        say(f"ledger of {rows:,} rows: cached ({path})")
        return path
    for stale in cache.glob(f"ledger-b{buyers}-r{rows}-*.db"):
        remove_ledger(stale)
    building = path.with_suffix(".building")
    copy_ledger(template, building)
    report = bulk_ledger.fill(building, rows, now=time.time(), buyers=buyers)
    building.rename(path)
    say(
        f"ledger of {rows:,} rows: filled in {report.seconds:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s), cached ({path})"
    )
    return path
