"""The AWS JS SDK v3 (@aws-sdk/client-marketplace-metering) against a real marketmeter server.

``tests/e2e/js/meter.mjs`` runs the SDK's ``BatchMeterUsageCommand`` for each job it reads on
stdin and prints one JSON line per job: the output, or the error the SDK surfaced (its ``name``,
HTTP status, ``$fault``, and whether it is an instance of the SDK's exported class of that
name). The SDK is installed by ``npm ci --prefix tests/e2e/js``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.node]

JS_DIR = Path(__file__).parent / "js"
METER = JS_DIR / "meter.mjs"
INSTALL = "npm ci --prefix tests/e2e/js"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the JS SDK installed in tests/e2e/js/node_modules.

    Outside CI, a missing node_modules is installed with ``npm ci`` when npm is available;
    in CI (``CI`` set) it must have been installed beforehand, so the CI script says so.
    """
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("node is not installed: the JS SDK tests need node >= 20 and npm")
    sdk = JS_DIR / "node_modules" / "@aws-sdk" / "client-marketplace-metering"
    npm = shutil.which("npm")
    if not sdk.is_dir() and npm is not None and not os.environ.get("CI"):
        subprocess.run(
            [npm, "ci", "--prefix", str(JS_DIR)], check=False, capture_output=True, timeout=300
        )
    if not sdk.is_dir():
        pytest.fail(
            f"The AWS JS SDK is not installed in {JS_DIR / 'node_modules'}: run `{INSTALL}` first."
        )
    return executable


def sdk_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any AWS_* setting or shared config file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-such-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def run_js(
    node: str, tmp_path: Path, jobs: list[dict[str, Any]], **env: str
) -> list[dict[str, Any]]:
    """Run the jobs in one node process; one result per job, in order."""
    done = subprocess.run(
        [node, str(METER)],
        input=json.dumps(jobs),
        env=sdk_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr}"
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(results) == len(jobs), f"stdout: {done.stdout}\nstderr: {done.stderr}"
    return results


def job(input_: dict[str, Any], endpoint: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"operation": "BatchMeterUsage", "input": input_}
    if endpoint is not None:
        out["endpoint"] = endpoint
    return out


def meter(
    node: str, server: ServerProcess, tmp_path: Path, *inputs: dict[str, Any]
) -> list[dict[str, Any]]:
    return run_js(node, tmp_path, [job(input_, server.url) for input_ in inputs])


def assert_typed_error(result: dict[str, Any], name: str) -> None:
    """The SDK threw its exported exception class ``name``, a 400 client fault."""
    assert result["ok"] is False, result
    assert result["name"] == name
    assert result["status"] == 400
    assert result["fault"] == "client"
    assert result["isTyped"] is True
    assert result["isServiceException"] is True


def assert_validation_error(result: dict[str, Any]) -> None:
    """ValidationException is not in the service model, so the SDK exports no class for it:
    it surfaces as a MarketplaceMeteringServiceException named ValidationException."""
    assert result["ok"] is False, result
    assert result["name"] == "ValidationException"
    assert result["status"] == 400
    assert result["fault"] == "client"
    assert result["isTyped"] is False
    assert result["isServiceException"] is True


def test_success_then_identical_retry_then_duplicate(
    node: str, server: ServerProcess, tmp_path: Path, now: int
) -> None:
    first, retry, changed = meter(
        node,
        server,
        tmp_path,
        batch(record(now, quantity=5)),
        batch(record(now, quantity=5)),
        batch(record(now, quantity=6)),
    )
    assert first["ok"] is True, first
    assert first["output"]["UnprocessedRecords"] == []
    [result] = first["output"]["Results"]
    assert result["Status"] == "Success"
    assert result["UsageRecord"] == record(now, quantity=5)
    metering_record_id = result["MeteringRecordId"]
    assert UUID.fullmatch(metering_record_id), metering_record_id

    assert retry["ok"] is True, retry
    [again] = retry["output"]["Results"]
    assert again["Status"] == "Success"
    assert again["MeteringRecordId"] == metering_record_id

    assert changed["ok"] is True, changed
    [duplicate] = changed["output"]["Results"]
    assert duplicate["Status"] == "DuplicateRecord"
    assert "MeteringRecordId" not in duplicate
    assert duplicate["UsageRecord"] == record(now, quantity=6)


def test_customer_not_subscribed(
    node: str, server: ServerProcess, tmp_path: Path, now: int
) -> None:
    [response] = meter(node, server, tmp_path, batch(record(now, customer="cust-dave")))
    assert response["ok"] is True, response
    [result] = response["output"]["Results"]
    assert result["Status"] == "CustomerNotSubscribed"
    assert "MeteringRecordId" not in result
    assert result["UsageRecord"] == record(now, customer="cust-dave")


def test_unknown_product_code(node: str, server: ServerProcess, tmp_path: Path, now: int) -> None:
    [error] = meter(node, server, tmp_path, batch(record(now), product="no-such-product"))
    assert_typed_error(error, "InvalidProductCodeException")
    assert "no-such-product" in error["message"]


def test_validation_errors(node: str, server: ServerProcess, tmp_path: Path, now: int) -> None:
    too_many, too_long = meter(
        node,
        server,
        tmp_path,
        batch(*[record(now, quantity=i) for i in range(26)]),
        batch(record(now, dimension="d" * 300)),
    )
    assert_validation_error(too_many)
    assert too_many["message"].startswith("1 validation error detected: Value ")
    assert too_many["message"].endswith(
        " at 'usageRecords' failed to satisfy constraint: "
        "Member must have length less than or equal to 25"
    )
    assert_validation_error(too_long)
    assert too_long["message"] == (
        f"1 validation error detected: Value '{'d' * 300}' at 'usageRecords.1.member.dimension' "
        "failed to satisfy constraint: Member must have length less than or equal to 255"
    )


def test_timestamp_seven_hours_ago(
    node: str, server: ServerProcess, tmp_path: Path, now: int
) -> None:
    [error] = meter(node, server, tmp_path, batch(record(now - 7 * 3600)))
    assert_typed_error(error, "TimestampOutOfBoundsException")


def test_dimension_is_case_sensitive_and_refuses_the_whole_batch(
    node: str, server: ServerProcess, tmp_path: Path, now: int
) -> None:
    error, after = meter(
        node,
        server,
        tmp_path,
        batch(record(now, quantity=2), record(now, dimension="Users")),
        batch(record(now, quantity=3)),
    )
    assert_typed_error(error, "InvalidUsageDimensionException")
    assert "'Users'" in error["message"]
    # Nothing of the refused batch was recorded: the valid record's key is still free.
    assert after["ok"] is True, after
    assert [r["Status"] for r in after["output"]["Results"]] == ["Success"]


def test_endpoint_from_service_specific_env_var(
    node: str, server: ServerProcess, tmp_path: Path, now: int
) -> None:
    """With no endpoint in its config, the SDK takes AWS_ENDPOINT_URL_MARKETPLACE_METERING."""
    request = batch(record(now, customer="cust-bob", quantity=4))
    [via_env, error] = run_js(
        node,
        tmp_path,
        [job(request, None), job(batch(record(now), product="no-such-product"), None)],
        AWS_ENDPOINT_URL_MARKETPLACE_METERING=server.url,
    )
    assert via_env["ok"] is True, via_env
    [result] = via_env["output"]["Results"]
    assert result["Status"] == "Success"
    assert UUID.fullmatch(result["MeteringRecordId"]), result["MeteringRecordId"]
    assert_typed_error(error, "InvalidProductCodeException")

    # The same server saw it: an identical retry through an explicit endpoint gets the same id.
    [retry] = meter(node, server, tmp_path, request)
    assert retry["output"]["Results"][0]["MeteringRecordId"] == result["MeteringRecordId"]
