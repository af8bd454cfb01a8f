"""The benchmark: marketmeter next to moto's server, on this machine, in one command.

    .venv/bin/python -m bench.run                     # everything, 10 s per run
    .venv/bin/python -m bench.run --seconds 30 --connections 8 64 --contenders moto sqlite-full
    .venv/bin/python -m bench.run --growth 0 1000000 --json results.json
    .venv/bin/python -m bench.run --smoke             # every path, 2 s runs, under a minute

Every run starts a server on a free 127.0.0.1 port with a fresh ledger (the bench catalog of
``bench/make_catalog.py``, applied once into a cached SQLite template and copied per run),
times how long it takes to answer, checks that one record bills (Success), loads it with
``wrk -t1 -c<C> -d<S>s --latency -s bench/batch_load.lua`` (25-record BatchMeterUsage batches
of distinct keys) and stops it; a marketmeter ledger must then hold 25 rows per 2xx answer (so
a load whose records were refused, not billed, fails).

Contenders: ``moto`` (its server, ``bench/moto_server.py``), ``sqlite-full`` and
``sqlite-normal`` (``marketmeter serve --sync full|normal``) and ``postgresql`` (one
PostgreSQL 15 with ``fsync=on``, a fresh database per run; only where Debian's ``postgresql``
is installed). Per run: requests/s, records/s (2xx only), p50/p99/max latency, the server's
CPU seconds and CPU % over the load window (its whole process tree, from ``/proc``; the
database's apart), its peak RSS (``VmHWM``) and wrk's own CPU. The table's last column is
the run's requests/s over moto's at the same connection count, in the same invocation.

Ledger growth (``--growth``): sqlite-full at ``--growth-connections`` on ledgers pre-filled with
that many billed rows (``bench/bulk_ledger.py``), cached in ``--cache-dir`` per row count.

A run with a non-2xx answer, a socket error, missing ledger rows or a failed start counts as
failed: it is printed, and the command exits with status 1. Several marketmeter nodes on one
PostgreSQL database are ``bench/postgres_nodes.py``'s subject, not this one's.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bulk_ledger
from marketmeter.metering.windows import floor_to_hour

__all__ = [
    "CONTENDERS",
    "Contender",
    "GrowthRow",
    "MotoContender",
    "PostgresContender",
    "RunResult",
    "SQLiteContender",
    "SocketErrors",
    "WrkReport",
    "check_billed",
    "copy_ledger",
    "filled_ledger",
    "format_growth_table",
    "format_table",
    "free_port",
    "key_space",
    "machine_description",
    "main",
    "measure",
    "parse_wrk",
    "peak_rss_mib",
    "postgres_available",
    "probe",
    "process_tree_cpu_seconds",
    "ratio",
    "remove_ledger",
    "run_command",
    "say",
    "stat_cpu_ticks",
    "stop",
    "template_ledger",
    "time_ms",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "batch_load.lua"
RECORDS_PER_REQUEST = 25  # bench/batch_load.lua's batch size
DIMENSIONS = 10
LOAD_HOURS = 5  # bench/batch_load.lua bills the last 5 hours
CONTENDERS = ("moto", "sqlite-full", "sqlite-normal", "postgresql")
# bench/batch_load.lua's header: moto routes by the credential scope; marketmeter (open auth)
# ignores the signature.
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/aws-marketplace/aws4_request, "
    "SignedHeaders=host;x-amz-target, Signature=0"
)
STRICT_AUTH_NOTE = (
    "strict-auth: not measured: marketmeter cannot verify SigV4 signatures yet (issue 8), so "
    "every marketmeter contender runs with open auth"
)

# --- wrk's output --------------------------------------------------------------------------

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = re.compile(r"([\d.]+)(us|ms|s|m|h)")
_LATENCY = re.compile(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+%$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+(\S+)$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s+(\d+) requests in (\S+), ", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)$", re.MULTILINE)


def time_ms(text: str) -> float:
    """A wrk duration (``463.00us``, ``6.16ms``, ``2.00s``, ``1.00m``) in milliseconds."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS_MS[match[2]]


@dataclass(frozen=True, slots=True)
class SocketErrors:
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.timeout


@dataclass(frozen=True, slots=True)
class WrkReport:
    """What one wrk run measured (times in milliseconds)."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: SocketErrors

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors.total

    @property
    def ok_requests_per_second(self) -> float:
        """Requests/s counting 2xx answers only."""
        if self.requests == 0:
            return 0.0
        return self.requests_per_second * (self.requests - self.non_2xx) / self.requests

    @property
    def records_per_second(self) -> float:
        return RECORDS_PER_REQUEST * self.ok_requests_per_second

    def describe_errors(self) -> str:
        parts = []
        if self.non_2xx:
            parts.append(f"{self.non_2xx} non-2xx answers")
        errors = self.socket_errors
        if errors.total:
            parts.append(
                f"socket errors: connect {errors.connect}, read {errors.read}, "
                f"write {errors.write}, timeout {errors.timeout}"
            )
        return "; ".join(parts)


def parse_wrk(output: str) -> WrkReport:
    """wrk's report (run with ``--latency``); ``ValueError`` if a figure is missing."""
    latency = _LATENCY.search(output)
    requests = _REQUESTS.search(output)
    rate = _RATE.search(output)
    percentiles = {int(m[1]): time_ms(m[2]) for m in _PERCENTILE.finditer(output)}
    if latency is None or requests is None or rate is None or len(percentiles) != 4:
        raise ValueError(f"not a wrk --latency report:\n{output}")
    socket_errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkReport(
        requests=int(requests[1]),
        seconds=time_ms(requests[2]) / 1000,
        requests_per_second=float(rate[1]),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        max_ms=time_ms(latency[3]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=SocketErrors(*(int(n) for n in socket_errors.groups()))
        if socket_errors
        else SocketErrors(),
    )


# --- processes -----------------------------------------------------------------------------


def stat_cpu_ticks(stat: str) -> tuple[int, int]:
    """(parent pid, CPU ticks) of a ``/proc/<pid>/stat`` line: utime + stime of the process
    and cutime + cstime of the children it reaped."""
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[1]), sum(int(field) for field in fields[11:15])


def process_tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and every live descendant (plus the children they
    reaped): the server's threads, worker processes, PostgreSQL's backends."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent, used = stat_cpu_ticks(Path(f"/proc/{entry}/stat").read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile
        ticks[int(entry)] = used
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for process {pid}")


def machine_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cpus = len(os.sched_getaffinity(0))
    return (
        f"{cpus} CPUs (nproc), {model}; Linux {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers 200; ``RuntimeError`` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} at start")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer {url} within {timeout:.0f} s")


def probe(port: int, customer: str) -> None:
    """Bill one record of a key the load never uses; ``RuntimeError`` unless it is Success
    (a 2xx from wrk then means the bench's records are billed, not refused)."""
    body = {
        "ProductCode": "bench-saas",
        "UsageRecords": [
            {
                "Timestamp": int(time.time()) - 60,
                "CustomerIdentifier": customer,
                "Dimension": "d0",
                "Quantity": 1,
            }
        ],
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
            "Authorization": AUTHORIZATION,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"probe: HTTP {error.code}: {error.read().decode()[:500]}") from None
    results = json.loads(text).get("Results", [])
    if len(results) != 1 or results[0].get("Status") != "Success":
        raise RuntimeError(f"probe: the record was not billed: {text[:500]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- contenders ----------------------------------------------------------------------------


class Contender:
    """One server setup: ``prepare`` makes a fresh state and returns the command serving it."""

    name = ""
    health_path = "/_marketmeter/health"

    def prepare(self, port: int) -> list[str]:
        raise NotImplementedError

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
    name = "moto"
    health_path = "/moto-api/"

    def __init__(self, customers: int) -> None:
        self.customers = customers

    def prepare(self, port: int) -> list[str]:
        return [sys.executable, "-m", "bench.moto_server", str(port), str(self.customers)]


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


def postgres_available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


# --- ledgers -------------------------------------------------------------------------------


def copy_ledger(source: Path, target: Path) -> None:
    """Copy a closed SQLite ledger (and its WAL, if one was left)."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + "-wal"))


def remove_ledger(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def run_command(argv: list[str]) -> str:
    """Run a preparation step in the repository; its output, or ``RuntimeError`` with it."""
    completed = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[1:])} exited with {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return completed.stdout


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
    catalog = cache / f"catalog-b{buyers}.yaml"
    catalog.write_text(run_command([sys.executable, str(make_catalog), str(buyers + 1)]))
    building = path.with_suffix(".building")
    remove_ledger(building)
    started = time.monotonic()
    run_command(
        [
            *(sys.executable, "-m", "marketmeter", "catalog", "apply"),
            *("--db", str(building), str(catalog)),
        ]
    )
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


# --- one run -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    contender: str
    connections: int
    ledger_rows: int = 0
    ready_seconds: float = 0.0
    wrk: WrkReport | None = None
    server_cpu_seconds: float = 0.0
    server_cpu_percent: float = 0.0
    database_cpu_seconds: float | None = None
    peak_rss_mib: float = 0.0
    wrk_cpu_seconds: float = 0.0
    error: str | None = None
    note: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or self.wrk is None or self.wrk.errors > 0


def say(text: str) -> None:
    print(text, flush=True)


def measure(
    contender: Contender,
    connections: int,
    seconds: int,
    buyers: int,
    work: Path,
    ledger_rows: int = 0,
) -> RunResult:
    """One run: a fresh server, ready time, probe, wrk, the figures, stop."""
    port = free_port()
    log = work / f"{contender.name}-c{connections}-r{ledger_rows}.log"
    label = f"{contender.name} c={connections}" + (f" rows={ledger_rows:,}" if ledger_rows else "")
    process: subprocess.Popen[bytes] | None = None
    try:
        argv = contender.prepare(port)
        started = time.monotonic()
        with log.open("wb") as output:
            process = subprocess.Popen(argv, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        wait_healthy(process, f"http://127.0.0.1:{port}{contender.health_path}")
        ready = time.monotonic() - started
        probe(port, f"c{buyers}")
        load_began = time.time()
        result = _load(process, contender, port, connections, seconds, buyers)
        result = dataclasses.replace(result, ready_seconds=ready, ledger_rows=ledger_rows)
        stop(process)
        # the load's oldest hour; a filled ledger's rows are all older
        since = floor_to_hour(load_began - 60 - (LOAD_HOURS - 1) * 3600)
        result = check_billed(result, contender.billed_rows_since(since), buyers)
    except Exception as error:  # a failed run is reported; the others still run
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        result = RunResult(
            contender.name, connections, ledger_rows, error=f"{error}\n{tail}".strip()
        )
    finally:
        if process is not None:
            stop(process)
        contender.cleanup()
    say(f"{label}: {_summary(result)}")
    return result


def _load(
    process: subprocess.Popen[bytes],
    contender: Contender,
    port: int,
    connections: int,
    seconds: int,
    buyers: int,
) -> RunResult:
    database = contender.database_pid()
    server_before = process_tree_cpu_seconds(process.pid)
    database_before = process_tree_cpu_seconds(database) if database else 0.0
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    completed = subprocess.run(
        [
            *("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"),
            *("-s", str(LUA), f"http://127.0.0.1:{port}/"),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BENCH_BUYERS": str(buyers),
            "BENCH_DIMS": str(DIMENSIONS),
            "BENCH_THREADS": "1",
            "BENCH_OFFSET": "0",
        },
        check=False,
    )
    window = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = process_tree_cpu_seconds(process.pid) - server_before
    database_cpu = process_tree_cpu_seconds(database) - database_before if database else None
    rss = peak_rss_mib(process.pid)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    report = parse_wrk(completed.stdout)
    keys = key_space(buyers)
    note = None
    if report.requests > keys:
        note = (
            f"the load ran out of new keys after {keys:,} requests: "
            f"{report.requests - keys:,} later requests re-sent billed keys"
        )
    return RunResult(
        contender.name,
        connections,
        wrk=report,
        server_cpu_seconds=server_cpu,
        server_cpu_percent=100 * server_cpu / window,
        database_cpu_seconds=database_cpu,
        peak_rss_mib=rss,
        wrk_cpu_seconds=(children_after.ru_utime - children_before.ru_utime)
        + (children_after.ru_stime - children_before.ru_stime),
        note=note,
    )


def check_billed(result: RunResult, billed: int | None, buyers: int) -> RunResult:
    """The run, failed if its ledger holds fewer of the load's rows than its 2xx answers
    promised: 25 per answer, when no request of the run (those answered and the at most one per
    connection left in flight) repeated a key. Fewer means records refused rather than billed,
    e.g. buyers the catalog does not subscribe. Past the key space nothing is checked."""
    report = result.wrk
    if billed is None or report is None:
        return result
    if report.requests + result.connections > key_space(buyers):
        return result
    ok = report.requests - report.non_2xx
    expected = RECORDS_PER_REQUEST * ok
    if billed >= expected:
        return result
    return dataclasses.replace(
        result,
        error=f"{billed:,} records billed for {ok:,} 2xx answers (at least {expected:,} expected)",
    )


def key_space(buyers: int) -> int:
    """Requests bench/batch_load.lua sends before it repeats a key."""
    return buyers // RECORDS_PER_REQUEST * DIMENSIONS * LOAD_HOURS


def _summary(result: RunResult) -> str:
    if result.error is not None:
        return f"FAILED: {result.error}"
    assert result.wrk is not None
    text = (
        f"ready in {result.ready_seconds:.2f} s, {result.wrk.requests_per_second:,.0f} req/s, "
        f"p99 {_ms(result.wrk.p99_ms)} ms"
    )
    if result.wrk.errors:
        text += f"; FAILED: {result.wrk.describe_errors()}"
    if result.note:
        text += f"; note: {result.note}"
    return text


# --- tables --------------------------------------------------------------------------------


def ratio(value: float, reference: float | None) -> float | None:
    """``value / reference``, or None without a usable reference."""
    if reference is None or reference <= 0:
        return None
    return value / reference


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


TABLE_HEADERS = (
    "contender",
    "conns",
    "req/s",
    "records/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "server CPU s",
    "server CPU %",
    "db CPU s",
    "peak RSS MiB",
    "wrk CPU s",
    "ready s",
    "× moto",
)


def format_table(results: Sequence[RunResult]) -> str:
    """One markdown row per run; the last column is req/s over moto's at the same
    connection count."""
    moto = {
        r.connections: r.wrk.requests_per_second
        for r in results
        if r.contender == "moto" and r.wrk is not None and not r.failed
    }
    rows = []
    for result in results:
        report = result.wrk
        if result.error is not None or report is None:
            rows.append(
                [result.contender, str(result.connections), "FAILED"]
                + ["–"] * (len(TABLE_HEADERS) - 3)
            )
            continue
        rate = report.requests_per_second
        rows.append(
            [
                result.contender + (" (errors)" if report.errors else ""),
                str(result.connections),
                f"{rate:,.0f}",
                f"{report.records_per_second:,.0f}",
                _ms(report.p50_ms),
                _ms(report.p99_ms),
                _ms(report.max_ms),
                f"{result.server_cpu_seconds:.2f}",
                f"{result.server_cpu_percent:.0f}",
                "–"
                if result.database_cpu_seconds is None
                else f"{result.database_cpu_seconds:.2f}",
                f"{result.peak_rss_mib:.0f}",
                f"{result.wrk_cpu_seconds:.2f}",
                f"{result.ready_seconds:.2f}",
                _times(ratio(rate, moto.get(result.connections))),
            ]
        )
    return _markdown(TABLE_HEADERS, rows)


@dataclass(frozen=True, slots=True)
class GrowthRow:
    ledger_rows: int
    result: RunResult


def format_growth_table(rows: Sequence[GrowthRow]) -> str:
    """Throughput and p99 per ledger size, and their ratios to the empty ledger's."""
    empty = next((row.result.wrk for row in rows if row.ledger_rows == 0), None)
    lines = []
    for row in rows:
        report = row.result.wrk
        if row.result.error is not None or report is None:
            lines.append(
                [f"{row.ledger_rows:,}", str(row.result.connections), "FAILED"] + ["–"] * 4
            )
            continue
        lines.append(
            [
                f"{row.ledger_rows:,}" + (" (errors)" if report.errors else ""),
                str(row.result.connections),
                f"{report.requests_per_second:,.0f}",
                _ms(report.p99_ms),
                f"{row.result.ready_seconds:.2f}",
                _times(
                    ratio(report.requests_per_second, empty.requests_per_second if empty else None)
                ),
                _times(ratio(report.p99_ms, empty.p99_ms if empty else None)),
            ]
        )
    headers = ("ledger rows", "conns", "req/s", "p99 ms", "ready s", "req/s × empty", "p99 × empty")
    return _markdown(headers, lines)


# --- the command ---------------------------------------------------------------------------


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk's duration per run (10)")
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[1, 8, 64],
        help="wrk's -c, one run each (1 8 64)",
    )
    parser.add_argument(
        "--contenders",
        nargs="*",
        choices=CONTENDERS,
        default=list(CONTENDERS),
        metavar="NAME",
        help=f"some of {' '.join(CONTENDERS)} (all; none: growth only)",
    )
    parser.add_argument(
        "--buyers",
        type=int,
        default=None,
        help="buyers the load bills, a multiple of 25 (20000; 2000 with --smoke)",
    )
    parser.add_argument(
        "--growth",
        type=int,
        nargs="*",
        default=[0, 1_000_000, 10_000_000],
        help="billed rows of the ledgers sqlite-full runs on (0 1000000 10000000; none: skip)",
    )
    parser.add_argument(
        "--growth-connections", type=int, default=64, help="wrk's -c of the growth runs (64)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/marketmeter-bench"),
        help="where template and filled ledgers are kept between runs (/tmp/marketmeter-bench)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check every path quickly: 2 s runs at 1 and 8 connections, growth 0 and 10,000 "
        "rows at 8 (overrides --seconds, --connections, --growth, --growth-connections)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    options = parser.parse_args(argv)
    if options.smoke:
        options.seconds = 2
        options.connections = [1, 8]
        options.growth = [0, 10_000]
        options.growth_connections = 8
    if options.buyers is None:
        options.buyers = 2000 if options.smoke else 20000
    if options.buyers % RECORDS_PER_REQUEST != 0 or options.buyers <= 0:
        parser.error(f"--buyers must be a positive multiple of {RECORDS_PER_REQUEST}")
    return options


def _contender(
    name: str, buyers: int, template: Path, work: Path
) -> tuple[Contender | None, str | None]:
    """The contender, or None and why it is not measured."""
    if name == "moto":
        return MotoContender(buyers + 1), None
    if name in ("sqlite-full", "sqlite-normal"):
        return SQLiteContender(name, name.removeprefix("sqlite-"), template, work), None
    if not postgres_available():
        return None, (
            "postgresql: skipped: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"
        )
    return _postgres_contender(template), None


def _postgres_contender(template: Path) -> PostgresContender:
    import psycopg
    from tests.postgres_server import PostgresServer

    started = time.monotonic()
    server = PostgresServer(fsync=True).start()
    try:
        with psycopg.connect(server.url, autocommit=True) as connection:
            connection.execute('CREATE DATABASE "bench_template"')
        run_command(
            [
                *(sys.executable, "-m", "marketmeter", "db", "copy", "--from", str(template)),
                *("--to", server.database_url("bench_template")),
            ]
        )
    except BaseException:
        server.stop()
        raise
    say(
        f"postgresql: server (fsync=on) and template database ready in "
        f"{time.monotonic() - started:.1f} s"
    )
    return PostgresContender(server, "bench_template")


def _reusable(results: Sequence[RunResult], rows: int, connections: int) -> RunResult | None:
    """The sqlite-full run already measured on an empty ledger at ``connections``, if any."""
    if rows != 0:
        return None
    return next(
        (r for r in results if r.contender == "sqlite-full" and r.connections == connections),
        None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    if shutil.which("wrk") is None:
        say("wrk is not installed (apt-get install wrk)")
        return 2
    started = time.monotonic()
    say(f"machine: {machine_description()}")
    say(
        f"load: wrk -t1, {options.seconds} s per run, 25-record BatchMeterUsage batches, "
        f"{options.buyers:,} buyers × {DIMENSIONS} dimensions × {LOAD_HOURS} hours"
    )
    say(STRICT_AUTH_NOTE)
    cache: Path = options.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=cache))
    results: list[RunResult] = []
    growth: list[GrowthRow] = []
    notes: list[str] = []
    try:
        template = template_ledger(cache, options.buyers)
        for name in options.contenders:
            try:
                contender, why_not = _contender(name, options.buyers, template, work)
            except Exception as error:  # reported as failed runs; the others still run
                say(f"{name}: FAILED to prepare: {error}")
                results += [RunResult(name, c, error=str(error)) for c in options.connections]
                continue
            if contender is None:
                assert why_not is not None
                say(why_not)
                notes.append(why_not)
                continue
            try:
                for connections in options.connections:
                    results.append(
                        measure(contender, connections, options.seconds, options.buyers, work)
                    )
            finally:
                contender.close()
        for rows in options.growth:
            same = _reusable(results, rows, options.growth_connections)
            if same is not None:
                growth.append(GrowthRow(rows, same))
                continue
            ledger = filled_ledger(cache, template, options.buyers, rows)
            contender = SQLiteContender("sqlite-full", "full", ledger, work)
            result = measure(
                contender, options.growth_connections, options.seconds, options.buyers, work, rows
            )
            growth.append(GrowthRow(rows, result))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    say("")
    say(f"machine: {machine_description()}")
    say(format_table(results) if results else "(no contender measured)")
    for note in notes:
        say(f"- {note}")
    say(f"- {STRICT_AUTH_NOTE}")
    if growth:
        say("")
        say(
            f"ledger growth: sqlite-full, {options.growth_connections} connections, "
            f"{options.seconds} s per run"
        )
        say(format_growth_table(growth))
    every = results + [row.result for row in growth if row.result not in results]
    for result in every:
        if result.note is not None:
            say(f"- note: {result.contender} c={result.connections}: {result.note}")
    failed = [r for r in every if r.failed]
    for result in failed:
        detail = result.error or (result.wrk.describe_errors() if result.wrk else "")
        say(f"FAILED {result.contender} c={result.connections} rows={result.ledger_rows}: {detail}")
    say(f"done in {time.monotonic() - started:.0f} s")
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {
                    "machine": machine_description(),
                    "seconds": options.seconds,
                    "buyers": options.buyers,
                    "runs": [_as_json(r) for r in results],
                    "growth": [_as_json(row.result) for row in growth],
                    "notes": [*notes, STRICT_AUTH_NOTE],
                },
                indent=2,
            )
        )
    return 1 if failed else 0


def _as_json(result: RunResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    if result.wrk is not None:
        data["requests_per_second_2xx"] = result.wrk.ok_requests_per_second
        data["records_per_second"] = result.wrk.records_per_second
    return data


if __name__ == "__main__":
    sys.exit(main())
