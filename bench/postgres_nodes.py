"""Throughput of BatchMeterUsage on PostgreSQL with 1 or more nodes, next to SQLite.

    .venv/bin/python -m bench.postgres_nodes --nodes 1 2 --seconds 10 --connections 16

For each configuration: a fresh ledger with the bench catalog (``bench/make_catalog.py``),
``--nodes`` ``marketmeter serve`` processes on it, and one ``wrk`` per node
(``bench/batch_load.lua``: 25-record batches of distinct keys) running at once for
``--seconds``; the requests/s of the nodes are summed. PostgreSQL runs with ``fsync=on`` and
marketmeter with ``synchronous_commit=on`` (durable), SQLite with ``synchronous=FULL``. Needs
``wrk`` and Debian's ``postgresql``. Everything shares this machine's cores: the figures are
what one machine does, not what N machines would.

Besides requests/s: the p99 of the slowest node, the CPU time the nodes (their process trees)
and the database (the postmaster's tree) spent per request, in milliseconds, which a loaded
machine changes far less than the rates, and each rate as a share of SQLite's in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.postgres_server import PostgresServer

from bench.processes import ROOT, free_port, process_tree_cpu_seconds, wait_healthy
from bench.run import LUA
from bench.wrk_report import parse_wrk


@dataclass(frozen=True, slots=True)
class Measured:
    """One configuration's run: summed rate, worst p99, CPU milliseconds per request."""

    requests_per_second: float
    p99_ms: float
    node_cpu_ms: float
    database_cpu_ms: float | None


def run(
    db: str,
    catalog: Path,
    nodes: int,
    seconds: int,
    connections: int,
    buyers: int,
    database_pid: int | None = None,
) -> Measured:
    """``nodes`` nodes serving ``db`` under load (the load's keys: ``buyers``); the CPU of the
    process tree of ``database_pid`` is counted as the database's."""
    ports = [free_port() for _ in range(nodes)]
    procs = []
    try:
        # The first node applies the catalog; the others start once it is in.
        for index, port in enumerate(ports):
            args = [sys.executable, "-m", "marketmeter", "serve", "--port", str(port), "--db", db]
            if index == 0:
                args += ["--catalog", str(catalog)]
            procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            wait_healthy(procs[-1], f"http://127.0.0.1:{port}/_marketmeter/health")
        now = str(int(time.time()))  # one instant for every wrk's timestamps
        nodes_before = sum(process_tree_cpu_seconds(proc.pid) for proc in procs)
        database_before = process_tree_cpu_seconds(database_pid) if database_pid else 0.0
        loads = [
            subprocess.Popen(
                [
                    *("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"),
                    *("-s", str(LUA)),
                    f"http://127.0.0.1:{port}/",
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={
                    "BENCH_BUYERS": str(buyers),
                    "BENCH_THREADS": str(nodes),
                    "BENCH_OFFSET": str(i),
                    "BENCH_NOW": now,
                    "PATH": "/usr/bin:/bin",
                },
            )
            for i, port in enumerate(ports)
        ]
        total, requests, p99 = 0.0, 0, 0.0
        for load in loads:
            out, _ = load.communicate()
            report = parse_wrk(out)
            if report.errors:
                raise RuntimeError(f"wrk got errors ({report.describe_errors()}):\n{out}")
            total += report.requests_per_second
            requests += report.requests
            p99 = max(p99, report.p99_ms)
        node_cpu = sum(process_tree_cpu_seconds(proc.pid) for proc in procs) - nodes_before
        database_cpu = (
            process_tree_cpu_seconds(database_pid) - database_before if database_pid else None
        )
        per_request = 1000 / max(requests, 1)
        return Measured(
            total,
            p99,
            node_cpu * per_request,
            None if database_cpu is None else database_cpu * per_request,
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def _measure(options: argparse.Namespace, work: Path) -> list[tuple[str, Measured]]:
    catalog = work / "bench.yaml"
    catalog.write_text(
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "make_catalog.py"), str(options.buyers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    rows: list[tuple[str, Measured]] = []
    rows.append(
        (
            "SQLite FULL, 1 node",
            run(
                str(work / "s.db"),
                catalog,
                1,
                options.seconds,
                options.connections,
                options.buyers,
            ),
        )
    )
    server = PostgresServer(fsync=True).start()
    try:
        for nodes in options.nodes:
            rate = run(
                server.fresh_database(),
                catalog,
                nodes,
                options.seconds,
                options.connections,
                options.buyers,
                server.process.pid if server.process else None,
            )
            rows.append((f"PostgreSQL, {nodes} node(s)", rate))
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=20000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="marketmeter-bench-"))
    try:
        rows = _measure(options, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sqlite = rows[0][1].requests_per_second
    print(
        f"{'configuration':<26} {'requests/s':>10} {'records/s':>10} {'p99 ms':>8} "
        f"{'node CPU ms/req':>15} {'db CPU ms/req':>13} {'x SQLite':>8}"
    )
    for name, measured in rows:
        rate = measured.requests_per_second
        database = "" if measured.database_cpu_ms is None else f"{measured.database_cpu_ms:.3f}"
        print(
            f"{name:<26} {rate:>10.0f} {rate * 25:>10.0f} {measured.p99_ms:>8.1f} "
            f"{measured.node_cpu_ms:>15.3f} {database:>13} {rate / sqlite:>8.2f}"
        )


if __name__ == "__main__":
    main()
