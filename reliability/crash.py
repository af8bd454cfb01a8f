"""The crash test (docs/reliability.md, first section): acknowledged means stored, a retry is
never billed twice.

    .venv/bin/python -m reliability.crash --cycles 50
    .venv/bin/python -m reliability.crash --cycles 50 --workers 2 --kill any
    .venv/bin/python -m reliability.crash --cycles 20 --backend postgresql

A real ``marketmeter serve`` on a fresh ledger (a SQLite file in a temporary directory, or a
database of a dedicated PostgreSQL 15 server) takes BatchMeterUsage and MeterUsage from
``--clients`` threads (``reliability.crash_load``). Each cycle, at a random moment (``--seed``),
one of the server's processes, chosen at random, gets SIGKILL (``--kill any``; ``--kill
server``: always its first process): a worker of ``serve --workers``, which the server starts
again while the others answer, or the coordinator (the only process with ``--workers 1``),
whose workers then stop and which is started again at once; the time from the kill until
``/_marketmeter/health`` answers is that restart's time. On PostgreSQL each cycle also stops the
database server in immediate mode at its own random moment and starts it again (marketmeter
keeps running); the time until marketmeter's usage view answers again is recorded. The clients
send every unanswered request again, unchanged. After the last cycle they drain, the server is
killed a last time, and the checker (``reliability.crash_checker``) compares what the clients
were told with the ledger read straight from the database. Prints the summary (and writes it
to ``--json``); exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reliability.crash_checker import Acknowledgements, Verdict, check, key_of_row
from reliability.crash_ledger import LedgerRow, integrity_problems, ledger_rows
from reliability.crash_load import KeySpace, LoadClient, LoadState, crash_catalog
from reliability.crash_postgres import CrashablePostgres

__all__ = ["CrashOutcome", "CrashSettings", "MarketmeterProcess", "main", "run_crash", "summary"]

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class CrashSettings:
    cycles: int = 50
    clients: int = 4
    backend: Backend = "sqlite"
    seed: int = 1
    min_uptime: float = 0.3  # seconds of load between a restart and the next crash
    max_uptime: float = 1.5
    restart_limit: float = 2.0
    buyers: int | None = None  # SaaS buyers in the catalog; default: enough keys for the run
    workers: int | None = None  # serve --workers (None: serve's default, one per core)
    # what each cycle kills: the whole server (its first process), or any one of its processes
    # at random (a worker, which the server starts again, or the coordinator, which the harness
    # starts again with its workers)
    kill: Literal["server", "any"] = "any"


@dataclass
class CrashOutcome:
    settings: CrashSettings
    db: str
    acks: Acknowledgements
    rows: list[LedgerRow]
    integrity: list[str]
    verdict: Verdict
    restart_seconds: list[float] = field(default_factory=list)
    database_recovery_seconds: list[float] = field(default_factory=list)
    workers_killed: int = 0
    requests: int = 0
    unanswered: int = 0
    retried_records: int = 0
    committed_before_crash: int = 0  # retried records the ledger had before the crash
    meter_usage_acknowledged: int = 0
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MarketmeterProcess:
    """``marketmeter serve`` on one ledger and one port, killed and started again at will."""

    def __init__(self, db: str, log: Path, workers: int | None = None) -> None:
        self.db = db
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, catalog: Path | None = None) -> None:
        args = [sys.executable, "-m", "marketmeter", "serve", "--port", str(self.port)]
        args += ["--db", self.db, "--journal-size", "0"]
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        if catalog is not None:
            args += ["--catalog", str(catalog)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}
            )

    def wait_answering(self, since: float, path: str = "/_marketmeter/health") -> float:
        """Seconds from ``since`` (monotonic) until ``path`` answers 200; raises after 30 s."""
        while time.monotonic() - since < 30:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"marketmeter exited:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - since
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"marketmeter did not answer {path} in 30 s")

    def worker_pids(self) -> list[int]:
        """The server's worker processes (none when it runs in one process)."""
        if self.process is None:
            return []
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the server's first process; wait until its workers are gone too (they stop
        when it dies)."""
        if self.process is not None:
            workers = self.worker_pids()
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None
            deadline = time.monotonic() + 30
            while any(map(_alive, workers)):
                if time.monotonic() > deadline:
                    for pid in workers:
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    raise RuntimeError(f"workers {workers} outlived their coordinator by 30 s")
                time.sleep(0.005)

    def kill_worker(self, rng: random.Random) -> bool:
        """SIGKILL one worker at random; False if there is none."""
        workers = self.worker_pids()
        if not workers:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(rng.choice(workers), signal.SIGKILL)
        return True


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie no longer runs


def run_crash(settings: CrashSettings, workdir: Path) -> CrashOutcome:
    """One full crash test in ``workdir`` (the ledger, catalog and logs stay there)."""
    began = time.monotonic()
    rng = random.Random(settings.seed)
    buyers = settings.buyers or max(100, 60 * settings.cycles)
    catalog = workdir / "catalog.yaml"
    catalog.write_text(crash_catalog(buyers))
    postgres: CrashablePostgres | None = None
    if settings.backend == "postgresql":
        postgres = CrashablePostgres()
        postgres.start()
        db = postgres.fresh_database()
    else:
        db = str(workdir / "ledger.db")
    server = MarketmeterProcess(db, workdir / "marketmeter.log", settings.workers)
    acks = Acknowledgements()
    state = LoadState()
    keys = KeySpace(buyers, int(time.time()), f"s{settings.seed}")
    clients = [
        LoadClient(server.url, keys, acks, state, random.Random(settings.seed * 1000 + n))
        for n in range(settings.clients)
    ]
    restarts: list[float] = []
    recoveries: list[float] = []
    workers_killed = 0
    try:
        server.start(catalog)
        server.wait_answering(time.monotonic())
        state.producing.set()
        for client in clients:
            client.start()
        for _ in range(settings.cycles):
            if postgres is not None:
                time.sleep(rng.uniform(settings.min_uptime, settings.max_uptime) / 2)
                stopped = time.monotonic()
                postgres.crash()
                postgres.recover()
                recoveries.append(server.wait_answering(stopped, "/_marketmeter/usage?limit=1"))
            time.sleep(rng.uniform(settings.min_uptime, settings.max_uptime))
            killed = time.monotonic()
            workers = len(server.worker_pids()) if settings.kill == "any" else 0
            if rng.randrange(workers + 1) and server.kill_worker(rng):
                workers_killed += 1  # the server starts it again; the others answer meanwhile
            else:
                server.kill()
                server.start()
            restarts.append(server.wait_answering(killed))
        state.producing.clear()
        for client in clients:
            client.idle.wait(timeout=60)
        state.stopping.set()
        for client in clients:
            client.join(timeout=30)
        server.kill()
        for request in state.left_unacknowledged:
            acks.refuse(f"never answered: {request.operation} of {len(request.keys)} records")
        rows = ledger_rows(db)
        integrity = integrity_problems(db)
    finally:
        state.stopping.set()
        server.kill()
        if postgres is not None:
            postgres.stop(fast=True)
    verdict = check(acks, rows, integrity, restarts, settings.restart_limit)
    outcome = CrashOutcome(settings, db, acks, rows, integrity, verdict, restarts, recoveries)
    outcome.requests, outcome.unanswered = state.requests, state.unanswered
    outcome.workers_killed = workers_killed
    _count_retries(outcome, state)
    outcome.meter_usage_acknowledged = sum(1 for key in acks.acked if key[3])
    outcome.seconds = time.monotonic() - began
    return outcome


def _count_retries(outcome: CrashOutcome, state: LoadState) -> None:
    stored = {key_of_row(row): row for row in outcome.rows}
    for request in state.retried_requests:
        for key, _ in request.keys:
            outcome.retried_records += 1
            row = stored.get(key)
            failed_at = request.failed_at
            if row is not None and failed_at is not None and row.received_at < failed_at:
                outcome.committed_before_crash += 1


def _seconds(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"max": 0.0, "avg": 0.0}
    return {"max": round(max(values), 3), "avg": round(statistics.fmean(values), 3)}


def summary(outcome: CrashOutcome) -> dict[str, Any]:
    """The figures of one run, as printed and written to ``--json``."""
    settings = outcome.settings
    return {
        "backend": settings.backend,
        "cycles": settings.cycles,
        "clients": settings.clients,
        "seed": settings.seed,
        "kills": len(outcome.restart_seconds) + 1,  # the cycles' and the final one
        "workers_killed": outcome.workers_killed,  # of those kills, a worker's alone
        "database_stops": len(outcome.database_recovery_seconds),
        "acknowledged_records": outcome.verdict.acknowledged,
        "acknowledged_meter_usage": outcome.meter_usage_acknowledged,
        "ledger_rows": outcome.verdict.rows,
        "requests": outcome.requests,
        "unanswered_attempts": outcome.unanswered,
        "retried_records": outcome.retried_records,
        "retried_records_committed_before_crash": outcome.committed_before_crash,
        "restart_seconds": _seconds(outcome.restart_seconds),
        "database_recovery_seconds": _seconds(outcome.database_recovery_seconds),
        "integrity": outcome.integrity or "ok",
        "duration_seconds": round(outcome.seconds, 1),
        "violations": len(outcome.verdict.violations),
        "first_violations": list(outcome.verdict.violations[:20]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.crash", description=__doc__)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=None, help="serve --workers (default: serve's own)."
    )
    parser.add_argument(
        "--kill",
        choices=["server", "any"],
        default="any",
        help="Each cycle kills the whole server, or any one of its processes at random.",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary here.")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Work here (kept), not in a temp dir."
    )
    args = parser.parse_args(argv)
    settings = CrashSettings(
        cycles=args.cycles,
        clients=args.clients,
        backend=args.backend,
        seed=args.seed,
        workers=args.workers,
        kill=args.kill,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        outcome = run_crash(settings, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="marketmeter-crash-") as workdir:
            outcome = run_crash(settings, Path(workdir))
    figures = summary(outcome)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0 if outcome.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
