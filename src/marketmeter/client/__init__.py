"""marketmeter's seller-side metering client: usage recorded durably, billed exactly once.

A seller's application records usage (``MeteringClient.record``); the client keeps it in a
local SQLite spool, folds it into one record per customer x dimension x hour once the hour has
closed, and sends it to AWS Marketplace (BatchMeterUsage, or MeterUsage for AMI and container
products), handling every answer: throttling, 5xx and UnprocessedRecords are retried,
DuplicateRecord, late usage, refused and expired records are kept and reported. A crash at any
moment loses nothing and bills nothing twice. Guide: docs/metering-client.md.

This package imports only the standard library and boto3/botocore, never the rest of
marketmeter: it runs in production against AWS.
"""

from __future__ import annotations

from marketmeter.client.meter import WINDOW, MeteringClient, make_aws_client
from marketmeter.client.model import (
    Allocation,
    Customer,
    Mode,
    RecordState,
    SpoolRecord,
    Status,
    StatusRow,
)
from marketmeter.client.pacing import Backoff, RateLimiter
from marketmeter.client.sender import MAX_BATCH, FlushResult
from marketmeter.client.spool import SpoolError

__all__ = [
    "MAX_BATCH",
    "WINDOW",
    "Allocation",
    "Backoff",
    "Customer",
    "FlushResult",
    "MeteringClient",
    "Mode",
    "RateLimiter",
    "RecordState",
    "SpoolError",
    "SpoolRecord",
    "Status",
    "StatusRow",
    "make_aws_client",
]
