"""The metering client's crash test (docs/metering-client.md): killed at any moment, it loses
nothing and bills nothing twice.

    .venv/bin/python -m reliability.client_crash --cycles 50

A marketmeter server (in this process) with its clock frozen (one hour later each cycle, so
an hour closes and is sent in each), faults on (throttling, 500s,
UnprocessedRecords, latency) takes BatchMeterUsage from a client process
(``reliability.client_crash_worker``) that records usage into one spool and flushes. Each
cycle, at a random moment of its life, the process gets SIGKILL, and a new one starts on the
same spool. Then the faults are removed, the clock moves one hour on (every hour closes), and
a last process flushes until nothing is pending. The check, from marketmeter's ledger:

- every acknowledged event is in the spool, and the spool holds nothing never recorded;
- every unit in the spool is billed exactly once (one ledger record per key, with the
  MeteringRecordId and the quantity the spool holds) or reported (duplicate, late, failed,
  expired); nothing is pending; the ledger holds nothing else.

Prints the summary (``--json`` writes it); exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketmeter.client import MeteringClient, RecordState
from marketmeter.testing import MarketmeterServer

__all__ = ["ClientCrashOutcome", "main", "run_client_crash"]

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
PRODUCT = "demo-saas-legacy"
STEP = timedelta(hours=1)  # the service clock's move between cycles: an hour closes each
FAULTS = [
    {"operation": "BatchMeterUsage", "probability": 0.15, "error": {"code": "ThrottlingException"}},
    {
        "operation": "BatchMeterUsage",
        "probability": 0.15,
        "error": {"code": "InternalServiceErrorException"},
    },
    {"operation": "BatchMeterUsage", "probability": 0.3, "unprocessedRecords": {"count": 2}},
    {"operation": "BatchMeterUsage", "probability": 0.5, "latencyMs": 100},
]

Key = tuple[str, str, datetime]


@dataclass
class ClientCrashOutcome:
    cycles: int = 0
    intended: int = 0
    acknowledged: int = 0
    in_spool: int = 0
    records: int = 0
    billed_records: int = 0
    units: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    # records billed, then sent again with the first id answered: a kill between send and store
    identical_resends: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _worker(spool: Path, log: Path, endpoint: str, now: datetime, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reliability.client_crash_worker",
        "--spool",
        str(spool),
        "--log",
        str(log),
        "--endpoint",
        endpoint,
        "--now",
        now.isoformat(),
        *extra,
    ]


def run_client_crash(
    cycles: int, seed: int, workdir: Path, max_life: float = 0.5
) -> ClientCrashOutcome:
    began = time.monotonic()
    rng = random.Random(seed)
    outcome = ClientCrashOutcome(cycles=cycles)
    spool, log = workdir / "spool.db", workdir / "events.log"
    with MarketmeterServer() as server:
        admin = server.admin
        admin.clock.set(NOW)
        admin.faults.set(*({**rule, "seed": seed + i} for i, rule in enumerate(FAULTS)))
        for cycle in range(cycles):
            now = NOW + cycle * STEP  # hours close as the cycles go
            admin.clock.set(now)
            args = _worker(spool, log, server.endpoint, now, "--seed", str(seed * 1000 + cycle))
            process = subprocess.Popen(args, stdout=subprocess.PIPE)
            assert process.stdout is not None
            ready = process.stdout.readline()
            if ready != b"ready\n":
                outcome.violations.append(f"cycle {cycle}: the worker did not start")
            time.sleep(rng.uniform(0, max_life))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            process.stdout.close()
        admin.faults.clear()
        end = NOW + cycles * STEP + timedelta(hours=1)
        admin.clock.set(end)
        final = subprocess.run(
            _worker(spool, log, server.endpoint, end, "--final"),
            check=False,
            timeout=300,
        )
        if final.returncode != 0:
            outcome.violations.append("the final flush left records pending")
        ledger = admin.usage(product=PRODUCT, limit=100000)
        journal = admin.journal.entries(operation="BatchMeterUsage", limit=10000)
    meter = MeteringClient(spool, PRODUCT, aws=object(), clock=lambda: end)
    check(outcome, meter, log, ledger, journal)
    outcome.seconds = round(time.monotonic() - began, 1)
    return outcome


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def check(
    outcome: ClientCrashOutcome,
    meter: MeteringClient,
    log: Path,
    ledger: list[dict[str, Any]],
    journal: list[dict[str, Any]],
) -> None:
    violations = outcome.violations
    intents: dict[str, tuple[Key, int]] = {}
    acked: set[str] = set()
    for line in log.read_text().splitlines():
        parts = line.split()
        if parts[0] == "I" and len(parts) == 6:
            at = datetime.fromisoformat(parts[4])
            intents[parts[1]] = ((parts[2], parts[3], _hour(at)), int(parts[5]))
        elif parts[0] == "A" and len(parts) == 2:
            acked.add(parts[1])
    outcome.intended, outcome.acknowledged = len(intents), len(acked)
    sure: dict[Key, int] = defaultdict(int)
    maybe: dict[Key, list[int]] = defaultdict(list)
    for seq, (key, quantity) in intents.items():
        if seq in acked:
            sure[key] += quantity
        else:
            maybe[key].append(quantity)
    records = meter.records()
    outcome.records = len(records)
    outcome.in_spool = sum(r.usage_events for r in records) + meter.status().unaggregated
    in_spool: dict[Key, Decimal] = defaultdict(Decimal)
    units: Counter[str] = Counter()
    sent: dict[Key, tuple[str | None, Decimal]] = {}
    for record in records:
        assert record.customer is not None
        key = (record.customer.label, record.dimension, record.hour)
        in_spool[key] += record.quantity
        units[record.state.value] += int(record.quantity)
        if record.state is RecordState.PENDING:
            violations.append(f"record {record.id} still pending")
        if record.state is RecordState.SENT:
            if key in sent:
                violations.append(f"{key} sent twice")
            sent[key] = (record.metering_record_id, record.quantity)
    outcome.units = {state: str(n) for state, n in sorted(units.items())}
    if meter.status().unaggregated:
        violations.append(f"{meter.status().unaggregated} events never aggregated")
    for key in set(sure) | set(maybe) | set(in_spool):
        extra = in_spool[key] - sure[key]
        sums = {
            sum(c)
            for n in range(len(maybe[key]) + 1)
            for c in itertools.combinations(maybe[key], n)
        }
        if extra not in sums:
            violations.append(f"{key}: spool holds {in_spool[key]}, acknowledged {sure[key]}")
    billed: dict[Key, tuple[str | None, Decimal]] = {}
    for row in ledger:
        key = (row["customerIdentifier"], row["dimension"], datetime.fromisoformat(row["hour"]))
        if key in billed:
            violations.append(f"{key} billed twice")
        billed[key] = (row["meteringRecordId"], Decimal(str(row["quantity"])))
    outcome.billed_records = len(billed)
    if billed != sent:
        for key in set(billed) | set(sent):
            if billed.get(key) != sent.get(key):
                violations.append(f"{key}: ledger {billed.get(key)}, spool {sent.get(key)}")
    outcome.calls = len(journal)
    answered: Counter[str] = Counter()
    for entry in journal:
        for result in (entry.get("response") or {}).get("Results", []):
            if result.get("Status") == "Success":
                answered[result["MeteringRecordId"]] += 1
    outcome.identical_resends = sum(1 for n in answered.values() if n > 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-life", type=float, default=0.5, help="seconds a worker may run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="client-crash-") as workdir:
        outcome = run_client_crash(args.cycles, args.seed, Path(workdir), args.max_life)
    summary = asdict(outcome)
    summary["violations"] = len(outcome.violations)
    print(json.dumps(summary, indent=2))
    for violation in outcome.violations[:20]:
        print("VIOLATION", violation)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(outcome), indent=2))
    return 1 if outcome.violations else 0


if __name__ == "__main__":
    sys.exit(main())
