"""The pytest plugin as a seller uses it: a pytest run in a directory of its own, with the
installed plugin; and ``MarketmeterServer`` directly, in both modes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest

from marketmeter.testing import AdminError, MarketmeterServer
from tests.pytest_runs import PYTEST

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"

# Two tests that would see each other's state if the bench were not reset between them.
ISOLATION = """
from datetime import UTC, datetime

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
RECORD = {"Timestamp": HOUR, "CustomerIdentifier": "cust-alice", "Dimension": "users",
          "Quantity": 1}


def test_first_changes_everything(marketmeter):
    marketmeter.client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[RECORD])
    marketmeter.admin.mint_token("prod-legacy", "444455556666")
    marketmeter.clock.set("2030-01-01T00:00:00Z")
    marketmeter.faults.throttle(times=5)
    marketmeter.faults.latency(1)
    assert len(marketmeter.usage()) == 1


def test_second_starts_clean(marketmeter):
    assert marketmeter.usage() == []
    assert marketmeter.clock.state()["mode"] == "system"
    assert marketmeter.faults.rules() == []
    assert marketmeter.journal.entries() == []
    assert len(marketmeter.admin.tokens()) == 5  # those minted when the catalog was applied
    response = marketmeter.client.batch_meter_usage(ProductCode="prod-legacy",
                                                    UsageRecords=[RECORD])
    assert response["Results"][0]["Status"] == "Success"
"""


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [*PYTEST, *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_each_test_gets_a_clean_bench_with_the_configured_catalog(
    tmp_path: Path, mode: str
) -> None:
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nmarketmeter_catalog = catalog.yaml\nmarketmeter_mode = {mode}\n"
    )
    (tmp_path / "catalog.yaml").write_text(CATALOG.read_text())
    (tmp_path / "test_isolation.py").write_text(ISOLATION)
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("2 passed in ")


def test_the_plugin_is_registered_and_documents_its_options(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "--help")
    assert "--marketmeter-mode={inprocess,subprocess}" in run.stdout
    assert "marketmeter_catalog (string):" in run.stdout
    assert "marketmeter_dry_run_answer (string):" in run.stdout


# A MeterUsage dry run from a buyer's instance (the demo catalog's alice, entitled to demo-ami).
DRY_RUN = """
import time

import pytest
from botocore.exceptions import ClientError


def dry_run(marketmeter):
    client = marketmeter.make_client(aws_access_key_id="AKIAMMDEMOBUYER00001",
                                     aws_session_token="i-0plugin")
    return client.meter_usage(ProductCode="demo-ami", Timestamp=int(time.time()),
                              UsageDimension="vcpu_hours", UsageQuantity=1, DryRun=True)


def test_dry_run(marketmeter):
    if EXPECT == "success":
        assert dry_run(marketmeter)["MeteringRecordId"] == "DryRunOperation"
    else:
        with pytest.raises(ClientError) as raised:
            dry_run(marketmeter)
        assert raised.value.response["Error"]["Code"] == "DryRunOperation"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert marketmeter.usage() == []
"""


@pytest.mark.parametrize(
    ("ini", "mode", "expect"),
    [
        ("", "inprocess", "success"),
        ("marketmeter_dry_run_answer = error\n", "inprocess", "error"),
        ("marketmeter_dry_run_answer = error\n", "subprocess", "error"),
    ],
)
def test_the_dry_run_answer_is_a_setting_of_the_plugin(
    tmp_path: Path, ini: str, mode: str, expect: str
) -> None:
    """By default AWS's answer (200, MeteringRecordId DryRunOperation); the ini option
    ``marketmeter_dry_run_answer = error`` gives the server ``--dry-run-answer error``."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nmarketmeter_mode = {mode}\n{ini}")
    (tmp_path / "test_dry_run.py").write_text(f"EXPECT = {expect!r}\n{DRY_RUN}")
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("1 passed in ")


def test_a_catalog_that_does_not_load_fails_the_session_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarketmeter_catalog = missing.yaml\n")
    (tmp_path / "test_x.py").write_text("def test_x(marketmeter):\n    pass\n")
    run = run_pytest(tmp_path)
    assert run.returncode == 1
    assert "missing.yaml" in run.stdout


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_marketmeter_server_without_pytest(mode: str) -> None:
    with MarketmeterServer(CATALOG, mode=mode) as server:  # type: ignore[arg-type]
        assert server.endpoint.startswith("http://127.0.0.1:")
        client = boto3.client(
            "meteringmarketplace",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIATESTSELLER000001",
            aws_secret_access_key="x",
        )
        server.admin.faults.error("InvalidProductCodeException", operation="BatchMeterUsage")
        with pytest.raises(client.exceptions.InvalidProductCodeException):
            client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[])
        assert server.admin.health()["status"] == "ok"
        workdir = Path(server.db).parent
    assert not workdir.exists()


def test_admin_errors_carry_the_field() -> None:
    with MarketmeterServer(CATALOG) as server, pytest.raises(AdminError) as refused:
        server.admin.clock.set("not a time")
    assert (refused.value.status, refused.value.field) == (400, "time")
