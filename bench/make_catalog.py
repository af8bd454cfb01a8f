"""Write the benchmark catalog: one SaaS product with D dimensions and N subscribed buyers, and
one AMI product with one entitled buyer (the MeterUsage load's)."""

from __future__ import annotations

import sys
from typing import TextIO

# The bench seller's key pair: the strict-auth contender signs with it (bench/signed_requests.py).
BENCH_ACCESS_KEY = "AKIABENCHSELLER00001"
BENCH_SECRET = "bench-seller-secret-not-for-production"
# The MeterUsage load's buyer (bench/meter_usage_load.lua): an AMI product and its one buyer.
BENCH_BUYER_ACCOUNT = "999900000001"
BENCH_BUYER_KEY = "AKIABENCHBUYER000001"


# Buyers per file: a catalog file holds at most 20,000 entries (docs/catalog.md), and each
# buyer takes two (the buyer, its agreement).
BUYERS_PER_PART = 9_000


def parts(buyers: int) -> list[tuple[int, int]]:
    """The ranges of buyers, one catalog file each, that ``main`` writes for ``buyers``."""
    return [(s, min(s + BUYERS_PER_PART, buyers)) for s in range(0, buyers, BUYERS_PER_PART)]


def main() -> None:
    """``make_catalog.py [BUYERS [DIMS [FIRST END]]]``: the sellers and products, and buyers
    FIRST..END-1 (all of them by default) with their agreements; the AMI buyer comes with the
    part starting at 0."""
    buyers = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    dims = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    end = int(sys.argv[4]) if len(sys.argv) > 4 else buyers
    write_catalog(sys.stdout, buyers, dims, first=first, end=end, ami=True)


def write_catalog(
    out: TextIO,
    buyers: int,
    dims: int = 10,
    *,
    first: int = 0,
    end: int | None = None,
    ami: bool = False,
) -> None:
    """The bench catalog: one seller, one SaaS product, buyers ``first``..``end``-1 (all
    ``buyers`` by default) and their agreements; with ``ami``, the AMI product too and, in the
    part starting at 0, its one entitled buyer (the MeterUsage load's)."""
    end = buyers if end is None else end
    out.write('sellers:\n  - account_id: "111122223333"\n')
    out.write(f"    access_keys:\n      - {{access_key_id: {BENCH_ACCESS_KEY}, ")
    out.write(f"secret_access_key: {BENCH_SECRET}}}\n")
    out.write('products:\n  - product_code: bench-saas\n    seller: "111122223333"\n')
    out.write(f"    kind: saas\n    dimensions: [{', '.join(f'd{d}' for d in range(dims))}]\n")
    if ami:
        out.write('  - product_code: bench-ami\n    seller: "111122223333"\n')
        out.write("    kind: ami\n    dimensions: [vcpu_hours]\n")
    out.write("buyers:\n")
    for i in range(first, end):
        out.write(f'  - {{account_id: "{100000000000 + i}", customer_identifier: c{i}}}\n')
    if ami and first == 0:
        out.write(f'  - account_id: "{BENCH_BUYER_ACCOUNT}"\n')
        out.write(f"    access_keys:\n      - {{access_key_id: {BENCH_BUYER_KEY}, ")
        out.write("secret_access_key: bench-buyer-secret-not-for-production}\n")
    out.write("agreements:\n")
    for i in range(first, end):
        out.write(f'  - {{buyer: "{100000000000 + i}", product: bench-saas}}\n')
    if ami and first == 0:
        out.write(f'  - {{buyer: "{BENCH_BUYER_ACCOUNT}", product: bench-ami}}\n')


if __name__ == "__main__":
    main()
