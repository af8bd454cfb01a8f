"""Write the benchmark catalog: one SaaS product with D dimensions and N subscribed buyers."""

from __future__ import annotations

import sys
from typing import TextIO

# The bench seller's key pair: the strict-auth contender signs with it (bench/signed_requests.py).
BENCH_ACCESS_KEY = "AKIABENCHSELLER00001"
BENCH_SECRET = "bench-seller-secret-not-for-production"


def main() -> None:
    buyers = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    dims = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    write_catalog(sys.stdout, buyers, dims)


def write_catalog(out: TextIO, buyers: int, dims: int = 10) -> None:
    """The bench catalog: one seller, one SaaS product, ``buyers`` buyers and their agreements."""
    out.write('sellers:\n  - account_id: "111122223333"\n')
    out.write(f"    access_keys:\n      - {{access_key_id: {BENCH_ACCESS_KEY}, ")
    out.write(f"secret_access_key: {BENCH_SECRET}}}\n")
    out.write('products:\n  - product_code: bench-saas\n    seller: "111122223333"\n')
    out.write(f"    kind: saas\n    dimensions: [{', '.join(f'd{d}' for d in range(dims))}]\n")
    out.write("buyers:\n")
    for i in range(buyers):
        out.write(f'  - {{account_id: "{100000000000 + i}", customer_identifier: c{i}}}\n')
    out.write("agreements:\n")
    for i in range(buyers):
        out.write(f'  - {{buyer: "{100000000000 + i}", product: bench-saas}}\n')


if __name__ == "__main__":
    main()
