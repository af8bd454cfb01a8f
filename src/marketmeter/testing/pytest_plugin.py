"""The pytest plugin: a marketmeter server for a seller's test session, clean for every test.

Registered with pytest when marketmeter is installed (entry point ``pytest11``). Fixtures:

- ``marketmeter`` (per test): a ``Marketmeter`` handle on a clean bench — the ledger as the
  catalog left it at start, the clock on wall time, no fault rule, an empty journal. It has the
  ``endpoint``, a configured boto3 ``client``, ``clock``, ``faults``, ``journal``,
  ``usage()``, snapshots and registration tokens.
- ``marketmeter_env`` (per test): the same, with ``AWS_ENDPOINT_URL_MARKETPLACE_METERING`` and
  test credentials in the environment, so code that builds its own
  ``boto3.client("meteringmarketplace")`` reaches marketmeter unchanged.
- ``marketmeter_server`` (per session): the server itself, started once.
- ``marketmeter_catalog`` (per session): the catalog YAML to start with; override it in a
  ``conftest.py``, or set the ini option ``marketmeter_catalog``. Default: the bundled demo
  catalog (``marketmeter catalog demo``).

Options: ``--marketmeter-mode=inprocess|subprocess`` (or the ini option ``marketmeter_mode``);
the ini option ``marketmeter_dry_run_answer`` (``success``, the default and AWS's answer, or
``error``: ``serve --dry-run-answer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from marketmeter.testing.admin_client import (
    AgreementsHandle,
    ClockHandle,
    FaultsHandle,
    JournalHandle,
    MarketmeterAdmin,
)
from marketmeter.testing.servers import MarketmeterServer, Mode

__all__ = [
    "BASELINE_SNAPSHOT",
    "Marketmeter",
    "marketmeter",
    "marketmeter_catalog",
    "marketmeter_env",
    "marketmeter_server",
]

# The snapshot taken once the session's server has loaded its catalog; every test starts there.
BASELINE_SNAPSHOT = "pytest-baseline"
# Test credentials: the demo catalog's seller key. In open auth (the default) any key works.
TEST_ACCESS_KEY = ("AKIAMMDEMOSELLER0001", "demo-seller-secret-do-not-use-in-production")
TEST_REGION = "us-east-1"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("marketmeter")
    group.addoption(
        "--marketmeter-mode",
        choices=("inprocess", "subprocess"),
        default=None,
        help="Run the marketmeter fixture's server in this process or as a subprocess.",
    )
    parser.addini("marketmeter_mode", "inprocess (default) or subprocess", default="inprocess")
    parser.addini(
        "marketmeter_dry_run_answer",
        "How a MeterUsage DryRun that would succeed is answered: success (HTTP 200, "
        "MeteringRecordId DryRunOperation, as AWS; default) or error (400 DryRunOperation)",
        default="success",
    )
    parser.addini(
        "marketmeter_catalog",
        "Catalog YAML for the marketmeter fixture (default: the bundled demo catalog)",
        default="",
    )


class Marketmeter:
    """What a test gets: the endpoint, a boto3 client, and the bench's handles."""

    def __init__(self, server: MarketmeterServer) -> None:
        self.server = server
        self.endpoint = server.endpoint
        self.admin: MarketmeterAdmin = server.admin
        self.clock: ClockHandle = self.admin.clock
        self.faults: FaultsHandle = self.admin.faults
        self.journal: JournalHandle = self.admin.journal
        self.agreements: AgreementsHandle = self.admin.agreements
        self._client: Any = None

    @property
    def client(self) -> Any:
        """A boto3 ``meteringmarketplace`` client for this endpoint, with boto3's default
        retry behaviour (so a test sees what production code would do)."""
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def make_client(self, **config: Any) -> Any:
        """A new boto3 client; ``config`` goes to ``botocore.config.Config`` (e.g.
        ``retries={"mode": "standard", "max_attempts": 3}``). Credentials and region can be
        given as ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token`` and
        ``region_name``."""
        import boto3
        from botocore.config import Config

        credentials = {
            "aws_access_key_id": config.pop("aws_access_key_id", TEST_ACCESS_KEY[0]),
            "aws_secret_access_key": config.pop("aws_secret_access_key", TEST_ACCESS_KEY[1]),
            "aws_session_token": config.pop("aws_session_token", None),
            "region_name": config.pop("region_name", TEST_REGION),
        }
        return boto3.client(
            "meteringmarketplace",
            endpoint_url=self.endpoint,
            config=Config(**config),
            **credentials,
        )

    def usage(self, **filters: Any) -> list[dict[str, Any]]:
        """The records billed so far (see ``MarketmeterAdmin.usage``)."""
        return self.admin.usage(**filters)

    def save_snapshot(self, name: str) -> dict[str, Any]:
        return self.admin.save_snapshot(name)

    def restore_snapshot(self, name: str) -> dict[str, Any]:
        return self.admin.restore_snapshot(name)

    def mint_token(self, product: str, buyer: str) -> str:
        """A fresh ResolveCustomer registration token for ``buyer``'s agreement."""
        return str(self.admin.mint_token(product, buyer)["token"])


@pytest.fixture(scope="session")
def marketmeter_catalog(pytestconfig: pytest.Config) -> Path | None:
    value = cast(str, pytestconfig.getini("marketmeter_catalog"))
    return pytestconfig.rootpath / value if value else None


@pytest.fixture(scope="session")
def marketmeter_server(
    pytestconfig: pytest.Config, marketmeter_catalog: Path | None
) -> Iterator[MarketmeterServer]:
    mode = pytestconfig.getoption("marketmeter_mode") or pytestconfig.getini("marketmeter_mode")
    dry_run_answer = cast(str, pytestconfig.getini("marketmeter_dry_run_answer"))
    server = MarketmeterServer(
        marketmeter_catalog, mode=cast(Mode, mode), dry_run_answer=dry_run_answer
    ).start()
    try:
        server.admin.save_snapshot(BASELINE_SNAPSHOT)
        yield server
    finally:
        server.stop()


@pytest.fixture
def marketmeter(marketmeter_server: MarketmeterServer) -> Marketmeter:
    admin = marketmeter_server.admin
    admin.reset()
    admin.restore_snapshot(BASELINE_SNAPSHOT)
    return Marketmeter(marketmeter_server)


@pytest.fixture
def marketmeter_env(marketmeter: Marketmeter, monkeypatch: pytest.MonkeyPatch) -> Marketmeter:
    monkeypatch.setenv("AWS_ENDPOINT_URL_MARKETPLACE_METERING", marketmeter.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_ACCESS_KEY[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    return marketmeter
