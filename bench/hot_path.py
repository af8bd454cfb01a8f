"""The request path's CPU per request, in process: BatchMeterUsage through the lane and through
the general path, on the bench's ledger, measured as CPU time of each thread.

    .venv/bin/python -m bench.hot_path                 # 2,000 requests each way, 64 at a time
    .venv/bin/python -m bench.hot_path --requests 5000 --concurrency 8

No HTTP server and no wrk: the ASGI endpoint is called directly with the bench's 25-record
batches of distinct keys (``bench/batch_load.lua``'s walk), on a copy of the bench's SQLite
ledger (``synchronous=FULL``, the catalog of 20,000 buyers). Per request it reports the event
loop thread's CPU and the SQLite writer thread's CPU (``/proc``), which a loaded machine changes
far less than throughput: CPU time is only counted while the thread runs. The first 200
requests warm the caches and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.contenders import copy_ledger, template_ledger
from bench.report import DIMENSIONS, LOAD_HOURS, say
from marketmeter.app import MarketmeterApp
from marketmeter.config import Settings
from marketmeter.metering.clock import SystemClock
from marketmeter.metering.ids import RandomIds
from marketmeter.store.sqlite import SQLiteStore

__all__ = ["main", "measure"]

WARM_UP = 200
HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"x-amz-target", b"AWSMPMeteringService.BatchMeterUsage"),
]


def _bodies(count: int, buyers: int, now: int) -> list[bytes]:
    per_hour = buyers // 25
    bodies = []
    for n in range(count):
        slot, rest = n % per_hour, n // per_hour
        timestamp = now - 60 - (rest // DIMENSIONS % LOAD_HOURS) * 3600
        records = [
            {
                "Timestamp": timestamp,
                "CustomerIdentifier": f"c{slot * 25 + i}",
                "Dimension": f"d{rest % DIMENSIONS}",
                "Quantity": n % 97 + 1,
            }
            for i in range(25)
        ]
        bodies.append(orjson.dumps({"ProductCode": "bench-saas", "UsageRecords": records}))
    return bodies


def _thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks


def measure(ledger: Path, lanes: bool, requests: int, concurrency: int, buyers: int) -> str:
    store = SQLiteStore(ledger)
    app = MarketmeterApp(Settings(), store, SystemClock(), RandomIds(), RandomIds(), lanes=lanes)
    writer = next(t for t in threading.enumerate() if t.name == "marketmeter-writer")
    bodies = _bodies(requests + WARM_UP, buyers, int(time.time()))

    async def one(body: bytes, gate: asyncio.Semaphore) -> None:
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "headers": HEADERS}
        async with gate:
            await app.endpoint(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"answered {sent[0]['status']}: {sent[1]['body'][:300]!r}")

    async def run() -> tuple[float, float, float]:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(b, gate) for b in bodies[:WARM_UP]))
        assert writer.native_id is not None
        started, loop_cpu = time.perf_counter(), time.thread_time()
        writer_cpu = _thread_cpu(writer.native_id)
        await asyncio.gather(*(one(b, gate) for b in bodies[WARM_UP:]))
        return (
            time.perf_counter() - started,
            time.thread_time() - loop_cpu,
            _thread_cpu(writer.native_id) - writer_cpu,
        )

    try:
        wall, loop_cpu, writer_cpu = asyncio.run(run())
    finally:
        store.close_now()
    return (
        f"{'lane' if lanes else 'general path'}: event loop {loop_cpu / requests * 1e6:,.0f} µs, "
        f"writer {writer_cpu / requests * 1e6:,.0f} µs of CPU per request; "
        f"{requests / wall:,.0f} requests/s in process"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="measured, each way (2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (64)")
    parser.add_argument("--buyers", type=int, default=20000, help="the bench catalog's (20000)")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/marketmeter-bench"))
    options = parser.parse_args(argv)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    template = template_ledger(options.cache_dir, options.buyers)
    work = Path(tempfile.mkdtemp(prefix="hot-path-", dir=options.cache_dir))
    try:
        for lanes in (True, False):
            ledger = work / f"lanes-{lanes}.db"
            copy_ledger(template, ledger)
            say(measure(ledger, lanes, options.requests, options.concurrency, options.buyers))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
