"""The AWS JS SDK v3 (@aws-sdk/client-marketplace-metering) against a real marketmeter server.

``tests/e2e/js/call.mjs`` runs the SDK's command of each job it reads on stdin
(``BatchMeterUsageCommand``, ``MeterUsageCommand``, ``ResolveCustomerCommand``,
``RegisterUsageCommand``), signed with the job's credentials (a buyer's key and session token
for MeterUsage and RegisterUsage, else the seller's), and prints one JSON line per job: the
output, or the error the SDK surfaced (its ``name``, ``$metadata.httpStatusCode``, ``$fault``,
and whether it is an instance of the SDK's exported class of that name). The SDK is installed
by ``npm ci --prefix tests/e2e/js``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.buyers import ALICE_KEY, admin
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.node, pytest.mark.backend_agnostic]

JS_DIR = Path(__file__).parent / "js"
CALL = JS_DIR / "call.mjs"
INSTALL = "npm ci --prefix tests/e2e/js"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")

ALICE = "444455556666"
BOB = "777788889999"
ISSUER_CATALOG = CATALOG.parent / "catalog_issuer_arns.yaml"
ISSUER_ALICE_CA = "arn:aws:license-manager::294406891311:license:l-aaaa0000000000000000000000000001"
ISSUER_BOB_CA = "arn:aws:license-manager::294406891311:license:l-bbbb0000000000000000000000000001"
AMI_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
LEGACY_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"


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


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the MeterUsage, ResolveCustomer and RegisterUsage tests, which keep out
    of each other's way (an instance, task or client token of their own), to keep the file fast."""
    process = ServerProcess(tmp_path_factory.mktemp("shared") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


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
        [node, str(CALL)],
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


def job(
    input_: dict[str, Any],
    endpoint: str | None,
    operation: str = "BatchMeterUsage",
    credentials: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One SDK call; without credentials, call.mjs signs with the test seller's key."""
    out: dict[str, Any] = {"operation": operation, "input": input_}
    if endpoint is not None:
        out["endpoint"] = endpoint
    if credentials is not None:
        out["credentials"] = credentials
    return out


def buyer(session: str, key: tuple[str, str] = ALICE_KEY) -> dict[str, str]:
    """A buyer's credentials for the SDK; the session token is the instance, task or pod."""
    return {"accessKeyId": key[0], "secretAccessKey": key[1], "sessionToken": session}


def meter(
    node: str, server: ServerProcess, tmp_path: Path, *inputs: dict[str, Any]
) -> list[dict[str, Any]]:
    return run_js(node, tmp_path, [job(input_, server.url) for input_ in inputs])


def assert_typed_error(result: dict[str, Any], name: str, status: int = 400) -> None:
    """The SDK threw its exported exception class ``name``, a client fault with HTTP ``status``."""
    assert result["ok"] is False, result
    assert result["name"] == name
    assert result["status"] == status
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


# --- MeterUsage ----------------------------------------------------------------------------------


def meter_usage(product: str, timestamp: int, dimension: str, quantity: int) -> dict[str, Any]:
    return {
        "ProductCode": product,
        "Timestamp": timestamp,
        "UsageDimension": dimension,
        "UsageQuantity": quantity,
    }


def billed_to(server: ServerProcess, instance: str) -> list[dict[str, Any]]:
    """The ledger rows of ``GET /_marketmeter/usage`` billed to one instance (session token)."""
    status, body = admin(server.url, "GET", "/_marketmeter/usage")
    assert status == 200, body
    return [row for row in body["records"] if row["instance"] == instance]


def hour_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp - timestamp % 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_meter_usage_success_retry_then_other_quantity(
    node: str, shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    instance = "i-0js00000000000001"
    credentials = buyer(instance)
    first, retry, changed = run_js(
        node,
        tmp_path,
        [
            job(
                meter_usage("prod-ami", now, "vcpu_hours", 3), shared.url, "MeterUsage", credentials
            ),
            job(
                meter_usage("prod-ami", now, "vcpu_hours", 3), shared.url, "MeterUsage", credentials
            ),
            job(
                meter_usage("prod-ami", now, "vcpu_hours", 4), shared.url, "MeterUsage", credentials
            ),
        ],
    )
    assert first["ok"] is True, first
    assert list(first["output"]) == ["MeteringRecordId"]
    metering_record_id = first["output"]["MeteringRecordId"]
    assert UUID.fullmatch(metering_record_id), metering_record_id
    assert retry == {"ok": True, "output": {"MeteringRecordId": metering_record_id}}

    assert_typed_error(changed, "DuplicateRequestException")
    assert changed["message"] == (
        "A metering record for product 'prod-ami', dimension 'vcpu_hours' and the hour starting "
        f"{hour_of(now)} was already sent from this instance with a different quantity."
    )

    [row] = billed_to(shared, instance)
    assert ISO_MICROS.fullmatch(row.pop("receivedAt"))
    assert row == {
        "meteringRecordId": metering_record_id,
        "productCode": "prod-ami",
        "customerAWSAccountId": ALICE,
        "customerIdentifier": "cust-alice",
        "licenseArn": AMI_LICENSE,
        "dimension": "vcpu_hours",
        "quantity": 3,
        "timestamp": now,
        "hour": hour_of(now),
        "usageAllocations": None,
        "operation": "MeterUsage",
        "instance": instance,
    }


def test_meter_usage_client_token_reused_with_other_parameters_is_a_409(
    node: str, shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    """prod-agent is metered per request: the ClientToken is the idempotency key."""
    credentials = buyer("i-0js00000000000002")
    one = {**meter_usage("prod-agent", now, "invocations", 1), "ClientToken": "js-call-1"}
    two = {**meter_usage("prod-agent", now, "invocations", 2), "ClientToken": "js-call-1"}
    first, conflict = run_js(
        node,
        tmp_path,
        [
            job(one, shared.url, "MeterUsage", credentials),
            job(two, shared.url, "MeterUsage", credentials),
        ],
    )
    assert first["ok"] is True, first
    assert UUID.fullmatch(first["output"]["MeteringRecordId"]), first
    assert_typed_error(conflict, "IdempotencyConflictException", status=409)
    assert conflict["message"] == (
        "ClientToken 'js-call-1' was already used with different parameters."
    )


def test_meter_usage_dry_run(node: str, shared: ServerProcess, tmp_path: Path, now: int) -> None:
    """A dry run that would succeed: HTTP 200, MeteringRecordId DryRunOperation, as AWS answers
    (cloudquery/plugin-sdk #1966): the SDK resolves, no exception; nothing is billed."""
    instance = "i-0js00000000000003"
    request = {**meter_usage("prod-ami", now, "vcpu_hours", 3), "DryRun": True}
    failing = {**meter_usage("prod-ami", now - 6 * 3600 - 60, "vcpu_hours", 3), "DryRun": True}
    dry_run, refused = run_js(
        node,
        tmp_path,
        [
            {**job(request, shared.url, "MeterUsage", buyer(instance)), "captureBody": True},
            job(failing, shared.url, "MeterUsage", buyer(instance)),
        ],
    )
    assert dry_run == {
        "ok": True,
        "output": {"MeteringRecordId": "DryRunOperation"},
        "body": {"MeteringRecordId": "DryRunOperation"},
    }
    assert_typed_error(refused, "TimestampOutOfBoundsException")
    assert billed_to(shared, instance) == []


def test_meter_usage_dry_run_error_setting(node: str, tmp_path: Path, now: int) -> None:
    """``serve --dry-run-answer error``: DryRunOperation is not in the service model, so the SDK
    throws a MarketplaceMeteringServiceException of that name."""
    server = ServerProcess(tmp_path / "ledger.db", CATALOG, "--dry-run-answer", "error").start()
    try:
        instance = "i-0js00000000000004"
        request = {**meter_usage("prod-ami", now, "vcpu_hours", 3), "DryRun": True}
        [error] = run_js(node, tmp_path, [job(request, server.url, "MeterUsage", buyer(instance))])
        assert error == {
            "ok": False,
            "name": "DryRunOperation",
            "status": 400,
            "message": "Request would have succeeded, but DryRun flag is set.",
            "fault": "client",
            "isTyped": False,
            "isServiceException": True,
        }
        assert billed_to(server, instance) == []
    finally:
        server.stop()


# --- LicenseArns in AWS's form -------------------------------------------------------------------


def test_issuer_license_arns_resolve_customer_to_usage_view(
    node: str, tmp_path: Path, now: int
) -> None:
    """tests/data/catalog_issuer_arns.yaml: LicenseArns of account 294406891311 for two buyers.
    ResolveCustomer answers the agreement's; BatchMeterUsage by LicenseArn (no ProductCode)
    bills each record to its agreement's buyer; the usage view shows it."""
    server = ServerProcess(tmp_path / "ledger.db", ISSUER_CATALOG).start()
    try:
        status, body = admin(
            server.url, "GET", f"/_marketmeter/tokens?product=prod-ca&buyer={ALICE}"
        )
        assert status == 200, body
        [token] = body["tokens"]
        records = [
            licensed_record(now, ALICE, ISSUER_ALICE_CA, 7),
            licensed_record(now, BOB, ISSUER_BOB_CA, 8),
        ]
        swapped = {
            "ProductCode": "prod-ca",
            "UsageRecords": [licensed_record(now, ALICE, ISSUER_BOB_CA, 1)],
        }
        resolved, billed, refused = run_js(
            node,
            tmp_path,
            [
                job({"RegistrationToken": token["token"]}, server.url, "ResolveCustomer"),
                job({"UsageRecords": records}, server.url),
                job(swapped, server.url),
            ],
        )
        assert resolved == {
            "ok": True,
            "output": {
                "ProductCode": "prod-ca",
                "CustomerAWSAccountId": ALICE,
                "LicenseArn": ISSUER_ALICE_CA,
            },
        }
        assert billed["ok"] is True, billed
        assert [r["Status"] for r in billed["output"]["Results"]] == ["Success", "Success"]
        ids = [r["MeteringRecordId"] for r in billed["output"]["Results"]]
        assert_typed_error(refused, "InvalidLicenseException")
        assert refused["message"] == (
            f"LicenseArn '{ISSUER_BOB_CA}' does not belong to the record's customer."
        )
        status, body = admin(server.url, "GET", "/_marketmeter/usage?product=prod-ca")
        assert status == 200, body
        assert sorted(
            (r["meteringRecordId"], r["customerAWSAccountId"], r["licenseArn"], r["quantity"])
            for r in body["records"]
        ) == sorted([(ids[0], ALICE, ISSUER_ALICE_CA, 7), (ids[1], BOB, ISSUER_BOB_CA, 8)])
    finally:
        server.stop()


def licensed_record(
    timestamp: int, account: str, license_arn: str, quantity: int
) -> dict[str, Any]:
    return {
        "Timestamp": timestamp,
        "CustomerAWSAccountId": account,
        "LicenseArn": license_arn,
        "Dimension": "requests",
        "Quantity": quantity,
    }


# --- ResolveCustomer -----------------------------------------------------------------------------


def test_resolve_customer(node: str, shared: ServerProcess, tmp_path: Path) -> None:
    status, body = admin(
        shared.url, "GET", "/_marketmeter/tokens?product=prod-legacy&buyer=444455556666"
    )
    assert status == 200, body
    token = body["tokens"][0]["token"]

    request = job({"RegistrationToken": token}, shared.url, "ResolveCustomer")
    [resolved] = run_js(node, tmp_path, [{**request, "captureBody": True}])
    # The SDK (3.1138) models ResolveCustomerResult without Metadata, so its output has the other
    # four fields; the body it received carries the agreement id too.
    assert resolved == {
        "ok": True,
        "output": {
            "CustomerIdentifier": "cust-alice",
            "ProductCode": "prod-legacy",
            "CustomerAWSAccountId": ALICE,
            "LicenseArn": LEGACY_LICENSE,
        },
        "body": {
            "CustomerIdentifier": "cust-alice",
            "ProductCode": "prod-legacy",
            "CustomerAWSAccountId": ALICE,
            "LicenseArn": LEGACY_LICENSE,
            "Metadata": {"AgreementId": agreement_id_for(LEGACY_LICENSE)},
        },
    }


def test_resolve_customer_unknown_token(node: str, shared: ServerProcess, tmp_path: Path) -> None:
    [error] = run_js(
        node, tmp_path, [job({"RegistrationToken": "A" * 64}, shared.url, "ResolveCustomer")]
    )
    assert_typed_error(error, "InvalidTokenException")
    assert error["message"] == "The registration token is invalid."


# --- RegisterUsage -------------------------------------------------------------------------------


def test_register_usage_signature_verifies_with_the_published_key(
    node: str, shared: ServerProcess, tmp_path: Path
) -> None:
    request = {"ProductCode": "prod-container", "PublicKeyVersion": 1, "Nonce": "js-nonce-1"}
    before = int(time.time())
    [registered] = run_js(
        node, tmp_path, [job(request, shared.url, "RegisterUsage", buyer("task-js-1"))]
    )
    after = time.time()
    assert registered["ok"] is True, registered
    assert list(registered["output"]) == ["Signature"]
    signature = registered["output"]["Signature"]

    status, pem = admin(shared.url, "GET", "/_marketmeter/keys/1")
    assert status == 200, pem
    assert jwt.get_unverified_header(signature) == {"alg": "PS256", "typ": "JWT"}
    claims = jwt.decode(signature, pem, algorithms=["PS256"])
    iat = claims.pop("iat")
    assert claims == {"productCode": "prod-container", "publicKeyVersion": 1, "nonce": "js-nonce-1"}
    assert isinstance(iat, int)
    assert before <= iat <= after


def test_register_usage_unknown_public_key_version(
    node: str, shared: ServerProcess, tmp_path: Path
) -> None:
    request = {"ProductCode": "prod-container", "PublicKeyVersion": 2}
    [error] = run_js(
        node, tmp_path, [job(request, shared.url, "RegisterUsage", buyer("task-js-2"))]
    )
    assert_typed_error(error, "InvalidPublicKeyVersionException")
    assert error["message"] == "Public key version 2 is invalid."
