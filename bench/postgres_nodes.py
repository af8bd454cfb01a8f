"""Throughput of BatchMeterUsage on PostgreSQL with 1 or more nodes, next to SQLite.

    .venv/bin/python -m bench.postgres_nodes --nodes 1 2 --seconds 10 --connections 16

For each configuration: a fresh ledger with the bench catalog (``bench/make_catalog.py``),
``--nodes`` ``marketmeter serve`` processes on it, and one ``wrk`` per node
(``bench/batch_load.lua``: 25-record batches of distinct keys) running at once for
``--seconds``; the requests/s of the nodes are summed. PostgreSQL runs with ``fsync=on`` and
marketmeter with ``synchronous_commit=on`` (durable), SQLite with ``synchronous=FULL``. Needs
``wrk`` and Debian's ``postgresql``. Everything shares this machine's cores: the figures are
what one machine does, not what N machines would.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.postgres_server import PostgresServer

from bench.processes import ROOT, free_port, wait_healthy
from bench.run import LUA
from bench.wrk_report import parse_wrk


def run(db: str, catalog: Path, nodes: int, seconds: int, connections: int, buyers: int) -> float:
    """Summed requests/s of ``nodes`` nodes serving ``db`` (the load's keys: ``buyers``)."""
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
        total = 0.0
        for load in loads:
            out, _ = load.communicate()
            report = parse_wrk(out)
            if report.errors:
                raise RuntimeError(f"wrk got errors ({report.describe_errors()}):\n{out}")
            total += report.requests_per_second
        return total
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def _measure(options: argparse.Namespace, work: Path) -> list[tuple[str, float]]:
    catalog = work / "bench.yaml"
    catalog.write_text(
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "make_catalog.py"), str(options.buyers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    rows: list[tuple[str, float]] = []
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
    print(f"{'configuration':<26} {'requests/s':>10} {'records/s':>10}")
    for name, rate in rows:
        print(f"{name:<26} {rate:>10.0f} {rate * 25:>10.0f}")


if __name__ == "__main__":
    main()
