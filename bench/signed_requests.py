"""Pre-signed load for the strict-auth contender: BatchMeterUsage requests signed with SigV4.

wrk's Lua cannot compute HMAC-SHA256, so the requests are signed ahead of the run by botocore's
own signer (``SigV4Auth``, the code boto3 signs with) for ``127.0.0.1:<port>`` and written one
per line (``x-amz-date``, ``Authorization``, body, tab-separated) to a file that
``bench/signed_load.lua`` replays in order. The bodies are ``bench/batch_load.lua``'s: 25 records
of distinct keys each, the same key walk, so the two loads bill the same ledger rows. Signing
happens right before the server starts; AWS accepts a signature for 5 minutes, far longer than
a run.
"""

from __future__ import annotations

import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.make_catalog import BENCH_ACCESS_KEY, BENCH_SECRET

__all__ = [
    "BENCH_ACCESS_KEY",
    "BENCH_SECRET",
    "batch_body",
    "bench_signer",
    "sign",
    "write_signed_requests",
]

TARGET = "AWSMPMeteringService.BatchMeterUsage"


def batch_body(n: int, buyers: int, dims: int, now: int) -> bytes:
    """Request ``n`` of the key walk of ``bench/batch_load.lua`` (same slots, dimension, hour)."""
    per_hour = buyers // 25
    slot = n % per_hour
    rest = n // per_hour
    dim = rest % dims
    hour = (rest // dims) % 5
    timestamp = now - 60 - hour * 3600
    records = ",".join(
        f'{{"Timestamp":{timestamp},"CustomerIdentifier":"c{slot * 25 + i}",'
        f'"Dimension":"d{dim}","Quantity":{(n % 97) + 1}}}'
        for i in range(25)
    )
    return f'{{"ProductCode":"bench-saas","UsageRecords":[{records}]}}'.encode()


def sign(port: int, body: bytes, auth: SigV4Auth) -> tuple[str, str]:
    """botocore's signature for ``body`` sent to ``127.0.0.1:<port>``: (x-amz-date,
    Authorization)."""
    request = AWSRequest(
        "POST",
        f"http://127.0.0.1:{port}/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET},
    )
    auth.add_auth(request)
    return str(request.headers["X-Amz-Date"]), str(request.headers["Authorization"])


def bench_signer() -> SigV4Auth:
    """botocore's signer with the bench seller's key, for aws-marketplace in us-east-1."""
    return SigV4Auth(Credentials(BENCH_ACCESS_KEY, BENCH_SECRET), "aws-marketplace", "us-east-1")


def write_signed_requests(path: Path, port: int, buyers: int, dims: int, count: int) -> None:
    """Write ``count`` signed requests for a server on ``port``."""
    auth = bench_signer()
    now = int(time.time())
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            body = batch_body(n, buyers, dims, now)
            date, authorization = sign(port, body, auth)
            out.write(f"{date}\t{authorization}\t{body.decode()}\n")
