"""The AWS CLI (awscli v1, the pip package) against a real marketmeter server process.

Each call runs ``python -m awscli meteringmarketplace batch-meter-usage`` in a subprocess with
static credentials, one attempt, and no shared config or credentials file, and asserts what a
user of the CLI relies on: the JSON it prints on success, or its exit code and the
``An error occurred (CODE) when calling the BatchMeterUsage operation: MESSAGE`` line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = pytest.mark.e2e

# awscli v1 exits 255 on a service error (ClientError); awscli v2 would exit 254.
CLIENT_ERROR_EXIT = 255

ERROR_LINE = re.compile(
    r"^An error occurred \((?P<code>\w+)\) when calling the BatchMeterUsage operation: "
    r"(?P<message>.*)$",
    re.MULTILINE,
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any AWS_* setting, plus the test seller's keys."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIATESTSELLER000001",
        AWS_SECRET_ACCESS_KEY="test-seller-secret",
        AWS_MAX_ATTEMPTS="1",
        AWS_CONFIG_FILE=str(tmp_path / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-such-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path, request: dict[str, Any], endpoint: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "awscli", "meteringmarketplace", "batch-meter-usage"]
    if endpoint is not None:
        args += ["--endpoint-url", endpoint]
    args += ["--region", "us-east-1", "--output", "json"]
    args += ["--cli-input-json", json.dumps(request)]
    return subprocess.run(
        args,
        env=cli_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def meter(server: ServerProcess, tmp_path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Run the CLI; it must succeed. Returns the JSON it printed."""
    done = run_cli(tmp_path, request, server.url)
    assert done.returncode == 0, f"aws exited {done.returncode}:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def meter_error(server: ServerProcess, tmp_path: Path, request: dict[str, Any]) -> tuple[str, str]:
    """Run the CLI; it must fail with a service error. Returns (error code, message)."""
    done = run_cli(tmp_path, request, server.url)
    assert done.returncode == CLIENT_ERROR_EXIT, (
        f"aws exited {done.returncode}:\nstdout: {done.stdout}\nstderr: {done.stderr}"
    )
    assert done.stdout == ""
    match = ERROR_LINE.search(done.stderr)
    assert match is not None, f"no 'An error occurred' line in stderr:\n{done.stderr}"
    return match["code"], match["message"]


def test_success_then_identical_retry_then_duplicate(
    server: ServerProcess, tmp_path: Path, now: int
) -> None:
    first = meter(server, tmp_path, batch(record(now, quantity=5)))
    assert first["UnprocessedRecords"] == []
    [result] = first["Results"]
    assert result["Status"] == "Success"
    assert result["UsageRecord"] == record(now, quantity=5)
    metering_record_id = result["MeteringRecordId"]
    assert UUID.fullmatch(metering_record_id), metering_record_id

    retry = meter(server, tmp_path, batch(record(now, quantity=5)))
    [again] = retry["Results"]
    assert again["Status"] == "Success"
    assert again["MeteringRecordId"] == metering_record_id

    changed = meter(server, tmp_path, batch(record(now, quantity=6)))
    [duplicate] = changed["Results"]
    assert duplicate["Status"] == "DuplicateRecord"
    assert "MeteringRecordId" not in duplicate
    assert duplicate["UsageRecord"] == record(now, quantity=6)


def test_customer_not_subscribed(server: ServerProcess, tmp_path: Path, now: int) -> None:
    output = meter(server, tmp_path, batch(record(now, customer="cust-dave")))
    [result] = output["Results"]
    assert result["Status"] == "CustomerNotSubscribed"
    assert "MeteringRecordId" not in result
    assert result["UsageRecord"] == record(now, customer="cust-dave")
    assert output["UnprocessedRecords"] == []


def test_unknown_product_code(server: ServerProcess, tmp_path: Path, now: int) -> None:
    code, message = meter_error(server, tmp_path, batch(record(now), product="no-such-product"))
    assert code == "InvalidProductCodeException"
    assert "no-such-product" in message


def test_more_than_25_records(server: ServerProcess, tmp_path: Path, now: int) -> None:
    records = [record(now, customer="cust-alice", quantity=i) for i in range(26)]
    code, message = meter_error(server, tmp_path, batch(*records))
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value ")
    assert message.endswith(
        " at 'usageRecords' failed to satisfy constraint: "
        "Member must have length less than or equal to 25"
    )


def test_dimension_longer_than_255(server: ServerProcess, tmp_path: Path, now: int) -> None:
    code, message = meter_error(server, tmp_path, batch(record(now, dimension="d" * 300)))
    assert code == "ValidationException"
    assert message == (
        f"1 validation error detected: Value '{'d' * 300}' at 'usageRecords.1.member.dimension' "
        "failed to satisfy constraint: Member must have length less than or equal to 255"
    )


def test_timestamp_seven_hours_ago(server: ServerProcess, tmp_path: Path, now: int) -> None:
    code, _ = meter_error(server, tmp_path, batch(record(now - 7 * 3600)))
    assert code == "TimestampOutOfBoundsException"


def test_dimension_is_case_sensitive_and_refuses_the_whole_batch(
    server: ServerProcess, tmp_path: Path, now: int
) -> None:
    code, message = meter_error(
        server, tmp_path, batch(record(now, quantity=2), record(now, dimension="Users"))
    )
    assert code == "InvalidUsageDimensionException"
    assert "'Users'" in message
    # Nothing of the refused batch was recorded: the valid record's key is still free.
    output = meter(server, tmp_path, batch(record(now, quantity=3)))
    assert [r["Status"] for r in output["Results"]] == ["Success"]


def test_endpoint_from_service_specific_env_var(
    server: ServerProcess, tmp_path: Path, now: int
) -> None:
    """awscli v1 (through botocore) honours AWS_ENDPOINT_URL_MARKETPLACE_METERING."""
    done = run_cli(
        tmp_path,
        batch(record(now, customer="cust-bob", quantity=4)),
        endpoint=None,
        AWS_ENDPOINT_URL_MARKETPLACE_METERING=server.url,
    )
    assert done.returncode == 0, f"aws exited {done.returncode}:\n{done.stderr}"
    [result] = json.loads(done.stdout)["Results"]
    assert result["Status"] == "Success"
    assert UUID.fullmatch(result["MeteringRecordId"]), result["MeteringRecordId"]

    # The same server saw it: an identical retry through --endpoint-url gets the same id.
    [again] = meter(server, tmp_path, batch(record(now, customer="cust-bob", quantity=4)))[
        "Results"
    ]
    assert again["MeteringRecordId"] == result["MeteringRecordId"]
