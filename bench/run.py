"""The benchmark: marketmeter next to moto's server, on this machine, in one command.

    .venv/bin/python -m bench.run                     # everything, 10 s per run
    .venv/bin/python -m bench.run --seconds 30 --connections 8 64 --contenders moto sqlite-full
    .venv/bin/python -m bench.run --growth 0 1000000 --json results.json
    .venv/bin/python -m bench.run --smoke             # every path once, 1 s runs, ~20 s
    .venv/bin/python -m bench.run --workers 1 --connections 64   # marketmeter in one process

Every run starts a server on a free 127.0.0.1 port with a fresh ledger (the bench catalog of
``bench/make_catalog.py``, applied once into a cached SQLite template and copied per run),
times how long it takes to answer, checks that one record bills (Success), loads it with
``wrk -t1 -c<C> -d<S>s --latency -s bench/batch_load.lua`` (25-record BatchMeterUsage batches
of distinct keys) and stops it; a marketmeter ledger must then hold 25 rows per 2xx answer (so
a load whose records were refused, not billed, fails).

Contenders: ``moto`` (its server as shipped, ``bench/moto_server.py``: a list scan of the
customers per record), ``moto-fair`` (the same with its subscription lookup made a set: the
peer the targets are measured against), ``sqlite-full`` and ``sqlite-normal``
(``marketmeter serve --sync full|normal``), ``sqlite-strict`` (``--auth sigv4``, pre-signed
load), ``sqlite-meter-usage`` (MeterUsage, one record a request from a new instance each,
``bench/meter_usage_load.lua``) and ``postgresql`` (one PostgreSQL 15 with ``fsync=on``, a
fresh database per run; only where Debian's ``postgresql`` is installed). Per run: requests/s,
records/s (2xx only), p50/p99/max latency, the server's CPU seconds and CPU % over the load
window (its whole process tree, from ``/proc``; the database's apart), its peak RSS
(``VmHWM`` of every process of the server, added up) and wrk's own CPU. marketmeter serves
with its default workers (one process per core, ``serve --workers``) unless ``--workers``
says. The table's last two columns are the run's requests/s over
moto-fair's and moto's at the same connection count, in the same invocation.

Ledger growth (``--growth``): sqlite-full at ``--growth-connections`` on ledgers pre-filled with
that many billed rows (``bench/bulk_ledger.py``), cached in ``--cache-dir`` per row count.

A run with a non-2xx answer, a socket error, missing ledger rows or a failed start counts as
failed: it is printed, and the command exits with status 1. Several marketmeter nodes on one
PostgreSQL database are ``bench/postgres_nodes.py``'s subject, not this one's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.contenders import (
    Contender,
    MeterUsageContender,
    MotoContender,
    PostgresContender,
    SQLiteContender,
    StrictSQLiteContender,
    filled_ledger,
    postgres_available,
    template_ledger,
)
from bench.processes import (
    ROOT,
    PssSampler,
    free_port,
    machine_description,
    process_tree_cpu_seconds,
    run_command,
    stop,
    tree_peak_rss_mib,
    wait_healthy,
)
from bench.report import (
    DIMENSIONS,
    LOAD_HOURS,
    GrowthRow,
    RunResult,
    as_json,
    check_billed,
    format_growth_table,
    format_table,
    key_space,
    say,
    summary,
)
from bench.wrk_report import RECORDS_PER_REQUEST, parse_wrk
from marketmeter.metering.windows import floor_to_hour

__all__ = ["CONTENDERS", "LUA", "main", "measure"]

LUA = ROOT / "bench" / "batch_load.lua"
# wrk counts an answer slower than this as a socket timeout (its default, 2 s, is below moto's
# p99 at 256 connections: moto's latency is measured, not cut off).
WRK_TIMEOUT = 10
CONTENDERS = (
    "moto",
    "moto-fair",
    "sqlite-full",
    "sqlite-normal",
    "sqlite-strict",
    "sqlite-meter-usage",
    "postgresql",
)


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
        contender.probe(port, buyers)
        load_began = int(time.time())  # the instant the load's timestamps count back from
        result = _load(process, contender, port, connections, seconds, buyers, load_began)
        result = dataclasses.replace(result, ready_seconds=ready, ledger_rows=ledger_rows)
        stop(process)
        # the load's oldest hour; a filled ledger's rows are all older
        since = floor_to_hour(load_began - 60 - (LOAD_HOURS - 1) * 3600)
        billed = contender.billed_rows_since(since)
        result = check_billed(result, billed, buyers, contender.distinct_keys)
    except Exception as error:  # a failed run is reported; the others still run
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        result = RunResult(
            contender.name, connections, ledger_rows, error=f"{error}\n{tail}".strip()
        )
    finally:
        if process is not None:
            stop(process)
        contender.cleanup()
    say(f"{label}: {summary(result)}")
    return result


def _load(
    process: subprocess.Popen[bytes],
    contender: Contender,
    port: int,
    connections: int,
    seconds: int,
    buyers: int,
    now: int,
) -> RunResult:
    database = contender.database_pid()
    server_before = process_tree_cpu_seconds(process.pid)
    database_before = process_tree_cpu_seconds(database) if database else 0.0
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with PssSampler(process.pid) as pss:
        completed = _wrk(contender, port, connections, seconds, buyers, now)
    window = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = process_tree_cpu_seconds(process.pid) - server_before
    database_cpu = process_tree_cpu_seconds(database) - database_before if database else None
    rss = tree_peak_rss_mib(process.pid)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    report = parse_wrk(completed.stdout)
    keys = key_space(buyers)
    note = None
    if report.requests > keys and not contender.distinct_keys:
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
        peak_pss_mib=pss.peak_mib,
        wrk_cpu_seconds=(children_after.ru_utime - children_before.ru_utime)
        + (children_after.ru_stime - children_before.ru_stime),
        note=note,
        records_per_request=contender.records_per_request,
    )


def _wrk(
    contender: Contender, port: int, connections: int, seconds: int, buyers: int, now: int
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"),
            *("--timeout", f"{WRK_TIMEOUT}s"),
            *("-s", str(contender.load_script), f"http://127.0.0.1:{port}/"),
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
            "BENCH_NOW": str(now),
            **contender.load_env(),
        },
        check=False,
    )


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
        default=[1, 8, 64, 256],
        help="wrk's -c, one run each (1 8 64 256)",
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
        help="check every path quickly: each contender once, a 1 s run at 8 connections, growth "
        "0 and 10,000 rows at 8 (overrides --seconds, --connections, --growth, "
        "--growth-connections)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="marketmeter's serve --workers for every marketmeter contender (default: serve's "
        "own, one per core)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    options = parser.parse_args(argv)
    if options.smoke:
        options.seconds = 1
        options.connections = [8]
        options.growth = [0, 10_000]
        options.growth_connections = 8
    if options.buyers is None:
        options.buyers = 2000 if options.smoke else 20000
    if options.buyers % RECORDS_PER_REQUEST != 0 or options.buyers <= 0:
        parser.error(f"--buyers must be a positive multiple of {RECORDS_PER_REQUEST}")
    return options


def _contender(
    name: str, buyers: int, template: Path, work: Path, seconds: int
) -> tuple[Contender | None, str | None]:
    """The contender, or None and why it is not measured."""
    if name in ("moto", "moto-fair"):
        return MotoContender(buyers + 1, fair=name == "moto-fair"), None
    if name == "sqlite-meter-usage":
        return MeterUsageContender(template, work), None
    if name in ("sqlite-full", "sqlite-normal"):
        return SQLiteContender(name, name.removeprefix("sqlite-"), template, work), None
    if name == "sqlite-strict":
        return StrictSQLiteContender(template, work, buyers, seconds), None
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
                contender, why_not = _contender(
                    name, options.buyers, template, work, options.seconds
                )
            except Exception as error:  # reported as failed runs; the others still run
                say(f"{name}: FAILED to prepare: {error}")
                results += [RunResult(name, c, error=str(error)) for c in options.connections]
                continue
            if contender is None:
                assert why_not is not None
                say(why_not)
                notes.append(why_not)
                continue
            contender.workers = options.workers
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
            contender.workers = options.workers
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
                    "runs": [as_json(r) for r in results],
                    "growth": [as_json(row.result) for row in growth],
                    "notes": notes,
                },
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
