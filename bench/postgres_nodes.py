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
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "batch_load.lua"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_marketmeter/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"node on {port} did not become healthy")


def run(db: str, catalog: Path, nodes: int, seconds: int, connections: int) -> float:
    """Summed requests/s of ``nodes`` nodes serving ``db``."""
    ports = [_free_port() for _ in range(nodes)]
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
            _wait_healthy(port)
        loads = [
            subprocess.Popen(
                [
                    *("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA)),
                    f"http://127.0.0.1:{port}/",
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={"BENCH_THREADS": str(nodes), "BENCH_OFFSET": str(i), "PATH": "/usr/bin:/bin"},
            )
            for i, port in enumerate(ports)
        ]
        total = 0.0
        for load in loads:
            out, _ = load.communicate()
            match = re.search(r"Requests/sec:\s+([\d.]+)", out)
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            if match is None or errors is not None:
                raise RuntimeError(f"wrk failed or got errors:\n{out}")
            total += float(match.group(1))
        return total
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=20000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="marketmeter-bench-"))
    catalog = work / "bench.yaml"
    catalog.write_text(
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "make_catalog.py"), str(options.buyers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    rows = []
    rows.append(
        (
            "SQLite FULL, 1 node",
            run(str(work / "s.db"), catalog, 1, options.seconds, options.connections),
        )
    )
    server = PostgresServer(fsync=True).start()
    try:
        for nodes in options.nodes:
            rate = run(
                server.fresh_database(), catalog, nodes, options.seconds, options.connections
            )
            rows.append((f"PostgreSQL, {nodes} node(s)", rate))
    finally:
        server.stop()
    print(f"{'configuration':<26} {'requests/s':>10} {'records/s':>10}")
    for name, rate in rows:
        print(f"{name:<26} {rate:>10.0f} {rate * 25:>10.0f}")


if __name__ == "__main__":
    main()
