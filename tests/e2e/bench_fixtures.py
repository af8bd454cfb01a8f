"""Shared pieces of the test bench's end-to-end tests (faults, journal, reset and snapshots).

- ``start_bench``: a real ``marketmeter serve`` (tests/data/catalog.yaml, SQLite or PostgreSQL
  as ``MARKETMETER_TEST_DB`` says) with a ``MarketmeterAdmin`` on it; test modules share one per
  module and reset it before each test.
- ``metering_client``: boto3's meteringmarketplace client with the retry settings spelled out.
  botocore's ``max_attempts`` counts retries, not attempts (``max_attempts: 1`` is two calls),
  so ``NO_RETRIES`` uses ``total_max_attempts: 1``: every call is exactly one request.
- ``outcome``: a call's status or error code, to compare sequences of outcomes exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from marketmeter.testing.admin_client import MarketmeterAdmin
from tests.e2e.buyers import SELLER_KEY
from tests.e2e.server_process import CATALOG, ServerProcess

__all__ = [
    "NO_RETRIES",
    "Bench",
    "as_echoed",
    "metering_client",
    "outcome",
    "start_bench",
]

NO_RETRIES: dict[str, Any] = {"mode": "standard", "total_max_attempts": 1}


@dataclass(frozen=True)
class Bench:
    """A running server and its admin API."""

    server: ServerProcess
    admin: MarketmeterAdmin

    @property
    def url(self) -> str:
        return self.server.url


def start_bench(directory: Path, *serve_options: str) -> Iterator[Bench]:
    """Serve the test catalog on a ledger in ``directory`` (with ``serve_options``) until the
    generator is closed; for ``yield from`` in a fixture."""
    server = ServerProcess(directory / "ledger.db", CATALOG, *serve_options).start()
    admin = MarketmeterAdmin(server.url)
    try:
        yield Bench(server, admin)
    finally:
        admin.close()
        server.stop()


def metering_client(
    url: str,
    key: tuple[str, str] = SELLER_KEY,
    session: str | None = None,
    region: str = "us-east-1",
    retries: dict[str, Any] | None = None,
) -> Any:
    """boto3's client signing with ``key`` in ``region``; no retry unless ``retries`` says."""
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        aws_session_token=session,
        config=Config(retries=NO_RETRIES if retries is None else retries),
    )


def outcome(call: Callable[[], Any]) -> str:
    """``"Success"`` when ``call`` answers, else the AWS error code boto3 raised."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "Success"


def as_echoed(record: dict[str, Any]) -> dict[str, Any]:
    """A usage record as sent (epoch ``Timestamp``) the way boto3 parses it back (a datetime)."""
    return {**record, "Timestamp": datetime.fromtimestamp(record["Timestamp"], UTC)}
