"""Fixtures of the end-to-end tests: a real server process and real AWS clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh ``marketmeter serve`` on an empty ledger (SQLite, or PostgreSQL under
    ``MARKETMETER_TEST_DB=postgresql``) with tests/data/catalog.yaml."""
    process = ServerProcess(tmp_path / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


def make_client(url: str, **config: Any) -> Any:
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSELLER000001",
        aws_secret_access_key="test-seller-secret",
        config=Config(**{"retries": {"max_attempts": 1, "mode": "standard"}, **config}),
    )


@pytest.fixture
def client(server: ServerProcess) -> Any:
    """boto3's real meteringmarketplace client pointed at ``server``."""
    return make_client(server.url)


@pytest.fixture
def now() -> int:
    """Epoch seconds, a few minutes into the current hour's past so tests stay in one window."""
    return int(time.time()) - 60
