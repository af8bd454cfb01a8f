"""The process the client crash test kills: it records usage and flushes, forever.

    python -m reliability.client_crash_worker --spool S --log L --endpoint URL --now ISO --seed N
    python -m reliability.client_crash_worker --spool S --log L --endpoint URL --now ISO --final

Events are stamped up to an hour before ``--now``. Each event is written to the log as an
intent (``I seq customer dimension time quantity``) before ``record()`` and acknowledged
(``A seq``) after it returns; a killed process's writes are in the kernel already, so the log
says exactly what was promised. Every few events it flushes. ``--final`` only flushes, until
nothing is pending. Imports ``marketmeter.client`` only, as a seller's process would.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta

from marketmeter.client import Backoff, MeteringClient, make_aws_client

CUSTOMERS = ("alice-cust-0001", "bob-cust-0002", "carol-cust-0003")
DIMENSIONS = ("users", "api_calls", "storage_gb")
PRODUCT = "demo-saas-legacy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--now", required=True, help="the client's clock, frozen (ISO 8601)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--final", action="store_true")
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now)
    aws = make_aws_client(
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAMMDEMOSELLER0001",
        aws_secret_access_key="x",
    )
    meter = MeteringClient(
        args.spool,
        PRODUCT,
        aws=aws,
        clock=lambda: now,
        backoff=Backoff(base=0.005, cap=0.05, max_attempts=6),
    )
    if args.final:
        for _ in range(100):
            if meter.flush().pending == 0:
                return 0
        return 1
    print("ready", flush=True)
    rng = random.Random(args.seed)
    with open(args.log, "a", buffering=1) as log:
        for n in range(10**9):
            seq = f"{args.seed}-{n}"
            customer = rng.choice(CUSTOMERS)
            dimension = rng.choice(DIMENSIONS)
            at = now - timedelta(seconds=rng.randrange(0, 3600))
            quantity = rng.randrange(1, 10)
            log.write(f"I {seq} {customer} {dimension} {at.isoformat()} {quantity}\n")
            meter.record(customer, dimension, quantity, at)
            log.write(f"A {seq}\n")
            if n % 4 == 3:
                meter.flush()
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
