"""Fixtures of the end-to-end tests: a real server process and real AWS clients.

``server`` is a fresh ``marketmeter serve`` for each test, unless the test's module is marked
``reused_server``: then the module shares one server, put back as it started before each test
(``POST /_marketmeter/reset``: an empty ledger, the clock, fault rules, quotas and journal as at
start), which spares a server start per test. That suits tests that only meter, read and move
the clock; a test of such a module that changes the catalog, tokens or keys, stops or restarts
the server, or reads its log is marked ``fresh_server`` and gets one of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.buyers import admin
from tests.e2e.server_process import ServerProcess


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server a ``reused_server`` module shares (see ``server``)."""
    process = ServerProcess(tmp_path_factory.mktemp("module-server") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A ``marketmeter serve`` on an empty ledger (SQLite, or PostgreSQL under
    ``MARKETMETER_TEST_DB=postgresql``) with tests/data/catalog.yaml, as it started: a fresh
    one, or in a ``reused_server`` module the module's, reset (unless marked ``fresh_server``)."""
    if (
        request.node.get_closest_marker("reused_server") is not None
        and request.node.get_closest_marker("fresh_server") is None
    ):
        shared: ServerProcess = request.getfixturevalue("module_server")
        assert shared.process is not None, "an earlier test stopped the module's server"
        assert shared.process.poll() is None, shared.output()
        status, body = admin(shared.url, "POST", "/_marketmeter/reset")
        assert status == 200, body
        yield shared
        return
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
