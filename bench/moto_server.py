"""moto's server with the bench's buyers subscribed: the contender marketmeter is measured against.

    .venv/bin/python bench/moto_server.py PORT BUYERS

moto's BatchMeterUsage answers Success only for customers registered in its backend (account
123456789012, region us-east-1, the credential scope of ``bench/batch_load.lua``'s header): this
registers c0..c<BUYERS-1> for product bench-saas, then runs moto's own server on 127.0.0.1.
"""

from __future__ import annotations

import sys

from moto.meteringmarketplace.models import meteringmarketplace_backends
from moto.server import main as moto_main

__all__ = ["main", "subscribe_bench_buyers"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PRODUCT = "bench-saas"


def subscribe_bench_buyers(buyers: int) -> None:
    """Register customers c0..c<buyers-1> of bench-saas in moto's in-memory backend."""
    backend = meteringmarketplace_backends[ACCOUNT][REGION]
    backend.customers_by_product[PRODUCT].extend(f"c{i}" for i in range(buyers))


def main(argv: list[str]) -> None:
    port, buyers = argv[0], int(argv[1])
    subscribe_bench_buyers(buyers)
    moto_main(["-p", port, "-H", "127.0.0.1"])


if __name__ == "__main__":
    main(sys.argv[1:])
