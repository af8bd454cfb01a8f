"""Catalogs at seller scale: applying, re-applying and serving 20,000 and 200,000 buyers.

    .venv/bin/python -m bench.catalog_scale                       # 20 k and 200 k, both backends
    .venv/bin/python -m bench.catalog_scale --sizes 20000 --backends sqlite

For each size N (``bench/make_catalog.py``: one seller, one SaaS product, N buyers, N
agreements) and backend (SQLite; PostgreSQL, a throwaway cluster as the suite's, needs Debian's
``postgresql``), each step a fresh process of the ``marketmeter`` command:

- ``apply``: ``marketmeter catalog apply`` into a new ledger; wall time and peak RSS;
- ``again``: the same file applied again, unchanged;
- ``ready (held)``: ``serve --catalog`` on that ledger until ``/_marketmeter/health`` answers
  (the catalog is recognised unchanged and not applied again);
- ``ready (new)``: ``serve --catalog`` on a new ledger until it answers;
- ``admin bulk``: ``POST /_marketmeter/catalog`` with the file as the body (the bulk, streamed
  form) to a server on a new ledger; wall time of the request and the server's peak RSS.

The peer, measured in the same run on the same file: PyYAML's ``CSafeLoader`` reading the file
whole (``yaml.load``), what any tool that takes a catalog at all pays; the ratios say how many
times that the step took. Each apply's peak RSS is checked: at most ``--max-rss`` MiB (150) for
20 k, twice that for 200 k (ten times the entries: the apply is streamed, so its memory
grows with the keys it keeps, not with the document). The steps run with their bytecode
compiled beforehand, as an installed marketmeter has it. Everything shares this machine's
cores with whatever else runs: say so with any figure (the load average is printed with
each size).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.make_catalog import write_catalog
from bench.processes import (
    free_port,
    machine_description,
    peak_rss_mib,
    process_tree_cpu_seconds,
    stop,
    wait_healthy,
)

__all__ = ["main"]

MARKETMETER = [sys.executable, "-m", "marketmeter"]
# What every step imports, compiled once before the first is measured (an installed
# marketmeter has its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE would compile its
# sources at every start): the bytecode goes to the run's own directory, never the checkout.
_WARM_UP = "import marketmeter.server, marketmeter.cli.serve, marketmeter.cli.catalog"


def _bytecode_in(directory: Path) -> None:
    """Let the steps' processes keep their bytecode in ``directory``, and compile it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(directory)
    subprocess.run([sys.executable, "-c", _WARM_UP], check=True)


@dataclass
class Measure:
    seconds: float  # wall
    cpu: float  # CPU seconds of the command (or the server's process tree)
    rss_mib: float


def _run(args: list[str]) -> Measure:
    """Run a command to its end: wall time and its own peak RSS (``wait4``)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out}\n{err}")
    return Measure(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _serve(db: str, catalog: Path | None) -> tuple[subprocess.Popen[bytes], str, float]:
    """A server on ``db`` (applying ``catalog``); its URL and seconds until health answered."""
    port = free_port()
    args = [*MARKETMETER, "serve", "--port", str(port), "--db", db]
    if catalog is not None:
        args += ["--catalog", str(catalog)]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(process, f"{url}/_marketmeter/health", timeout=600)
    return process, url, time.perf_counter() - started


_PEER = (
    "import sys, time, yaml\n"
    "started = time.perf_counter()\n"
    "yaml.load(open(sys.argv[1], 'rb'), Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))\n"
    "print(time.perf_counter() - started)\n"
)


def _peer(catalog: Path) -> Measure:
    """The peer in a process of its own (this one stays small: a child's peak RSS counts its
    parent's at fork)."""
    return _run([sys.executable, "-c", _PEER, str(catalog)])


class _SqliteLedgers:
    """New SQLite ledgers in ``directory``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self._directory = directory
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return str(self._directory / f"ledger-{self._count}.db")


def measure(catalog: Path, new_db: Callable[[], str]) -> dict[str, Measure]:
    """Every step for one catalog on one backend (``new_db()``: a new ledger's URL)."""
    results: dict[str, Measure] = {}
    db = new_db()
    results["apply"] = _run([*MARKETMETER, "catalog", "apply", str(catalog), "--db", db])
    results["again"] = _run([*MARKETMETER, "catalog", "apply", str(catalog), "--db", db])
    for name, ledger in (("ready (held)", db), ("ready (new)", new_db())):
        process, _, seconds = _serve(ledger, catalog)
        cpu = process_tree_cpu_seconds(process.pid)
        results[name] = Measure(seconds, cpu, peak_rss_mib(process.pid))
        stop(process)
    process, url, _ = _serve(new_db(), None)
    try:
        cpu = process_tree_cpu_seconds(process.pid)
        started = time.perf_counter()
        with catalog.open("rb") as body:
            answer = httpx.post(
                f"{url}/_marketmeter/catalog",
                params={"source": catalog.name},
                content=body,
                headers={"Content-Type": "application/yaml"},
                timeout=600,
            )
        answer.raise_for_status()
        results["admin bulk"] = Measure(
            time.perf_counter() - started,
            process_tree_cpu_seconds(process.pid) - cpu,
            peak_rss_mib(process.pid),
        )
    finally:
        stop(process)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--max-rss",
        type=float,
        default=150.0,
        help="MiB an apply of 20 k may peak at; twice that for any larger catalog",
    )
    options = parser.parse_args()
    print(f"machine: {machine_description()} (shared: other work runs at the same time)")
    work = Path(tempfile.mkdtemp(prefix="marketmeter-catalog-scale-"))
    _bytecode_in(work / "bytecode")
    postgres = None
    failed = False
    try:
        for size in options.sizes:
            catalog = work / f"catalog-{size}.yaml"
            with catalog.open("w") as out:
                write_catalog(out, size)
            peer = _peer(catalog)
            mib = catalog.stat().st_size / 2**20
            print(
                f"\n{size} buyers + {size} agreements ({mib:.1f} MiB); load average "
                f"{os.getloadavg()[0]:.1f}; peer, yaml.load with "
                f"CSafeLoader: {peer.seconds:.2f} s, {peer.cpu:.2f} s CPU, "
                f"peak RSS {peer.rss_mib:.1f} MiB"
            )
            for backend in options.backends:
                if backend == "postgresql":
                    if postgres is None:
                        from tests.postgres_server import PostgresServer

                        postgres = PostgresServer(fsync=True).start()
                    new_db: Callable[[], str] = postgres.fresh_database
                else:
                    new_db = _SqliteLedgers(work / f"sqlite-{size}")

                results = measure(catalog, new_db)
                print(f"  {backend} (load average {os.getloadavg()[0]:.1f} after):")
                for name, result in results.items():
                    wall, cpu = result.seconds / peer.seconds, result.cpu / peer.cpu
                    print(
                        f"    {name:<13} {result.seconds:7.2f} s ({wall:5.2f}× peer)  "
                        f"{result.cpu:7.2f} s CPU ({cpu:5.2f}× peer)  "
                        f"peak RSS {result.rss_mib:6.1f} MiB"
                    )
                bound = options.max_rss * (1 if size <= 20_000 else 2)
                for name in ("apply", "again"):
                    if results[name].rss_mib > bound:
                        failed = True
                        print(f"    {name}: peak RSS over {bound} MiB")
    finally:
        if postgres is not None:
            postgres.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
