"""The metering client's benchmark: records accepted durably per second, and the cost of one.

    .venv/bin/python -m bench.client_spool                       # 2,000 records per run
    .venv/bin/python -m bench.client_spool --records 200 --threads 1 4 --processes 2 --json out.json

Each run records into a fresh spool in a temporary directory (on the same file system as
``--dir``, default the system's temporary directory: durability costs what its fsync costs):

- ``record``: one ``MeteringClient.record`` per event, from 1 or more threads of one process,
  or from several processes at once; each returns once its transaction is committed
  (WAL, ``synchronous=FULL``), so records/s is how fast usage is accepted durably, µs per
  record is the wait a caller pays (fsync included) and CPU µs per record the client's own
  work;
- ``record_many``: events committed 100 at a time (one transaction each);
- ``aggregate``: folding the recorded events into hourly records (events/s), what ``flush``
  does before sending.

Nothing is sent: the sending side is bounded by AWS's quota (10 calls/s of 25 records), not by
the client. Prints a table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marketmeter.client import MeteringClient

__all__ = ["main", "run_benchmark"]

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def _client(spool: Path) -> MeteringClient:
    return MeteringClient(spool, "bench-product", aws=object(), clock=lambda: START)


def _event(n: int) -> tuple[str, str, int, datetime]:
    return f"cust-{n % 50}", ("users", "api_calls")[n % 2], 1, START + timedelta(seconds=n % 3600)


def _record_range(spool: Path, first: int, count: int) -> None:
    meter = _client(spool)
    for n in range(first, first + count):
        meter.record(*_event(n))
    meter.close()


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of ``action``."""
    began, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - began, time.process_time() - cpu


def _result(
    name: str, workers: int, records: int, timing: tuple[float, float], cpu: bool = True
) -> dict[str, Any]:
    seconds, cpu_seconds = timing
    return {
        "run": name,
        "workers": workers,
        "records": records,
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds),
        # wall time per record each worker waited (the caller's overhead, fsync included)
        "microseconds_per_record": round(seconds * workers / records * 1e6, 1),
        # CPU time per record (the client's own work; None when it ran in other processes)
        "cpu_microseconds_per_record": round(cpu_seconds / records * 1e6, 1) if cpu else None,
    }


def run_threads(directory: Path, records: int, threads: int) -> dict[str, Any]:
    spool = directory / f"threads-{threads}.db"
    _client(spool).close()
    share = records // threads
    workers = [
        threading.Thread(target=_record_range, args=(spool, i * share, share))
        for i in range(threads)
    ]

    def go() -> None:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return _result("record (threads)", threads, share * threads, _timed(go))


def run_processes(directory: Path, records: int, processes: int) -> dict[str, Any]:
    spool = directory / f"processes-{processes}.db"
    _client(spool).close()
    share = records // processes
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_record_range, args=(spool, i * share, share))
        for i in range(processes)
    ]

    def go() -> None:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    # process start-up is inside the timing: the figure is a lower bound
    return _result("record (processes)", processes, share * processes, _timed(go), cpu=False)


def run_many(directory: Path, records: int, batch: int = 100) -> dict[str, Any]:
    meter = _client(directory / "many.db")

    def go() -> None:
        for first in range(0, records, batch):
            count = min(batch, records - first)
            meter.record_many([(*_event(n), None) for n in range(first, first + count)])

    return _result(f"record_many ({batch})", 1, records, _timed(go))


def run_aggregate(directory: Path, records: int) -> dict[str, Any]:
    meter = _client(directory / "threads-1.db")
    return _result("aggregate", 1, records, _timed(lambda: meter.spool.aggregate(10**12)))


def run_benchmark(
    records: int, threads: list[int], processes: list[int], directory: Path
) -> list[dict[str, Any]]:
    results = [run_threads(directory, records, n) for n in sorted({1, *threads})]
    results += [run_processes(directory, records, n) for n in processes]
    results.append(run_many(directory, records))
    results.append(run_aggregate(directory, records))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="*", default=[4])
    parser.add_argument("--processes", type=int, nargs="*", default=[2])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="client-bench-", dir=args.dir) as directory:
        results = run_benchmark(args.records, args.threads, args.processes, Path(directory))
    print(
        f"{'RUN':<22} {'WORKERS':>7} {'RECORDS':>8} {'RECORDS/S':>10} {'µS/RECORD':>10}"
        f" {'CPU µS/RECORD':>14}"
    )
    for r in results:
        cpu = r["cpu_microseconds_per_record"]
        print(
            f"{r['run']:<22} {r['workers']:>7} {r['records']:>8}"
            f" {r['records_per_second']:>10} {r['microseconds_per_record']:>10}"
            f" {cpu if cpu is not None else '-':>14}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
