"""moto's server with the bench's buyers subscribed: the contender marketmeter is measured against.

    .venv/bin/python bench/moto_server.py PORT BUYERS [--fair]

moto's BatchMeterUsage answers Success only for customers registered in its backend (account
123456789012, region us-east-1, the credential scope of ``bench/batch_load.lua``'s header): this
registers c0..c<BUYERS-1> for product bench-saas, then runs moto's own server on 127.0.0.1.

As shipped, moto keeps a product's customers in a deque and scans it for every record (20,000
string comparisons per record at the bench's size). ``--fair`` keeps the same deque but answers
``is_subscribed`` from a set built once: the peer marketmeter's targets are measured against,
since a real service would not scan its customers either.
"""

from __future__ import annotations

import sys

from moto.meteringmarketplace.models import CustomerDeque, meteringmarketplace_backends
from moto.server import main as moto_main

__all__ = ["SetCustomers", "main", "subscribe_bench_buyers"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PRODUCT = "bench-saas"


class SetCustomers(CustomerDeque):
    """moto's customer deque whose membership test is a set lookup (``--fair``)."""

    def __init__(self, customers: list[str]) -> None:
        super().__init__(customers)
        self._members = frozenset(customers)

    def is_subscribed(self, customer: str) -> bool:
        return customer in self._members


def subscribe_bench_buyers(buyers: int, fair: bool = False) -> None:
    """Register customers c0..c<buyers-1> of bench-saas in moto's in-memory backend."""
    backend = meteringmarketplace_backends[ACCOUNT][REGION]
    customers = [f"c{i}" for i in range(buyers)]
    if fair:
        backend.customers_by_product[PRODUCT] = SetCustomers(customers)
    else:
        backend.customers_by_product[PRODUCT].extend(customers)


def main(argv: list[str]) -> None:
    port, buyers = argv[0], int(argv[1])
    subscribe_bench_buyers(buyers, fair="--fair" in argv[2:])
    moto_main(["-p", port, "-H", "127.0.0.1"])


if __name__ == "__main__":
    main(sys.argv[1:])
