"""The AWS CLI (awscli v1, the pip package) against a real marketmeter server process.

Each call runs ``python -m awscli meteringmarketplace <command>`` (batch-meter-usage,
meter-usage, resolve-customer, register-usage) in a subprocess with static credentials (a
buyer's key and ``AWS_SESSION_TOKEN`` for MeterUsage and RegisterUsage), one attempt, and no
shared config or credentials file, and asserts what a user of the CLI relies on: the JSON it
prints on success, or its exit code and the
``An error occurred (CODE) when calling the <Operation> operation: MESSAGE`` line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.buyers import ALICE_KEY, ClockControl, admin
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the MeterUsage, ResolveCustomer and RegisterUsage tests, which keep out
    of each other's way (an instance, task or client token of their own), to keep the file fast."""
    process = ServerProcess(tmp_path_factory.mktemp("shared") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


# awscli v1 exits 255 on a service error (ClientError); awscli v2 would exit 254.
CLIENT_ERROR_EXIT = 255

ERROR_LINE = re.compile(
    r"^An error occurred \((?P<code>\w+)\) when calling the (?P<operation>\w+) operation: "
    r"(?P<message>.*)$",
    re.MULTILINE,
)
# What botocore logs under --debug: the raw HTTP response body, as a bytes literal.
RESPONSE_BODY = re.compile(r"Response body:\nb'(?P<body>\{.*\})'$", re.MULTILINE)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")

ALICE = "444455556666"
BOB = "777788889999"
ISSUER_CATALOG = CATALOG.parent / "catalog_issuer_arns.yaml"
ISSUER_ALICE_CA = "arn:aws:license-manager::294406891311:license:l-aaaa0000000000000000000000000001"
ISSUER_BOB_CA = "arn:aws:license-manager::294406891311:license:l-bbbb0000000000000000000000000001"
AMI_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
LEGACY_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"


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


def buyer_env(session: str, key: tuple[str, str] = ALICE_KEY) -> dict[str, str]:
    """The CLI signs as a buyer; the session token is the instance, task or pod."""
    return {
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_SESSION_TOKEN": session,
    }


def operation_of(command: str) -> str:
    """The operation name the CLI prints for a command: meter-usage → MeterUsage."""
    return "".join(word.capitalize() for word in command.split("-"))


def run_command(
    tmp_path: Path, command: str, args: list[str], endpoint: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "awscli", "meteringmarketplace", command, *args]
    if endpoint is not None:
        argv += ["--endpoint-url", endpoint]
    argv += ["--region", "us-east-1", "--output", "json"]
    return subprocess.run(
        argv,
        env=cli_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def call(
    server: ServerProcess, tmp_path: Path, command: str, *args: str, **env: str
) -> dict[str, Any]:
    """Run the CLI command; it must succeed. Returns the JSON it printed."""
    done = run_command(tmp_path, command, list(args), server.url, **env)
    assert done.returncode == 0, f"aws exited {done.returncode}:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def call_error(
    server: ServerProcess, tmp_path: Path, command: str, *args: str, **env: str
) -> tuple[str, str]:
    """Run the CLI command; it must fail with a service error of its operation.
    Returns (error code, message)."""
    done = run_command(tmp_path, command, list(args), server.url, **env)
    assert done.returncode == CLIENT_ERROR_EXIT, (
        f"aws exited {done.returncode}:\nstdout: {done.stdout}\nstderr: {done.stderr}"
    )
    assert done.stdout == ""
    match = ERROR_LINE.search(done.stderr)
    assert match is not None, f"no 'An error occurred' line in stderr:\n{done.stderr}"
    assert match["operation"] == operation_of(command)
    return match["code"], match["message"]


def run_cli(
    tmp_path: Path, request: dict[str, Any], endpoint: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    """batch-meter-usage with the whole request as --cli-input-json."""
    args = ["--cli-input-json", json.dumps(request)]
    return run_command(tmp_path, "batch-meter-usage", args, endpoint, **env)


def meter(server: ServerProcess, tmp_path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Run batch-meter-usage; it must succeed. Returns the JSON it printed."""
    return call(server, tmp_path, "batch-meter-usage", "--cli-input-json", json.dumps(request))


def meter_error(server: ServerProcess, tmp_path: Path, request: dict[str, Any]) -> tuple[str, str]:
    """Run batch-meter-usage; it must fail with a service error. Returns (code, message)."""
    return call_error(
        server, tmp_path, "batch-meter-usage", "--cli-input-json", json.dumps(request)
    )


def meter_usage_args(product: str, timestamp: int, dimension: str, quantity: int) -> list[str]:
    return [
        "--product-code",
        product,
        "--timestamp",
        str(timestamp),
        "--usage-dimension",
        dimension,
        "--usage-quantity",
        str(quantity),
    ]


def billed_to(server: ServerProcess, instance: str) -> list[dict[str, Any]]:
    """The ledger rows of ``GET /_marketmeter/usage`` billed to one instance (session token)."""
    status, body = admin(server.url, "GET", "/_marketmeter/usage")
    assert status == 200, body
    return [row for row in body["records"] if row["instance"] == instance]


def hour_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp - timestamp % 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


# --- MeterUsage ----------------------------------------------------------------------------------


def test_meter_usage_is_billed_to_the_instance_of_the_session_token(
    shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    instance = "i-0cli0000000000001"
    args = meter_usage_args("prod-ami", now, "vcpu_hours", 3)
    printed = call(shared, tmp_path, "meter-usage", *args, **buyer_env(instance))
    assert list(printed) == ["MeteringRecordId"]
    metering_record_id = printed["MeteringRecordId"]
    assert UUID.fullmatch(metering_record_id), metering_record_id

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

    # The same instance, hour and quantity again: the same record.
    again = call(shared, tmp_path, "meter-usage", *args, **buyer_env(instance))
    assert again == {"MeteringRecordId": metering_record_id}


def test_meter_usage_other_quantity_in_the_same_hour_is_a_duplicate(
    shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    instance = "i-0cli0000000000002"
    first = call(
        shared,
        tmp_path,
        "meter-usage",
        *meter_usage_args("prod-ami", now, "vcpu_hours", 3),
        **buyer_env(instance),
    )
    code, message = call_error(
        shared,
        tmp_path,
        "meter-usage",
        *meter_usage_args("prod-ami", now, "vcpu_hours", 4),
        **buyer_env(instance),
    )
    assert code == "DuplicateRequestException"
    assert message == (
        "A metering record for product 'prod-ami', dimension 'vcpu_hours' and the hour starting "
        f"{hour_of(now)} was already sent from this instance with a different quantity."
    )
    [row] = billed_to(shared, instance)
    assert (row["meteringRecordId"], row["quantity"]) == (first["MeteringRecordId"], 3)


def test_meter_usage_client_token_reused_with_other_parameters(
    shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    """prod-agent is metered per request: the ClientToken is the idempotency key (HTTP 409)."""
    env = buyer_env("i-0cli0000000000003")
    first = call(
        shared,
        tmp_path,
        "meter-usage",
        *meter_usage_args("prod-agent", now, "invocations", 1),
        "--client-token",
        "cli-call-1",
        **env,
    )
    assert UUID.fullmatch(first["MeteringRecordId"]), first
    code, message = call_error(
        shared,
        tmp_path,
        "meter-usage",
        *meter_usage_args("prod-agent", now, "invocations", 2),
        "--client-token",
        "cli-call-1",
        **env,
    )
    assert code == "IdempotencyConflictException"
    assert message == "ClientToken 'cli-call-1' was already used with different parameters."


def test_meter_usage_dry_run(shared: ServerProcess, tmp_path: Path, now: int) -> None:
    """A dry run that would succeed: HTTP 200, MeteringRecordId DryRunOperation (as AWS), so the
    CLI exits 0 and prints it; nothing is billed."""
    instance = "i-0cli0000000000004"
    dry_run = [*meter_usage_args("prod-ami", now, "vcpu_hours", 3), "--dry-run"]
    printed = call(shared, tmp_path, "meter-usage", *dry_run, **buyer_env(instance))
    assert printed == {"MeteringRecordId": "DryRunOperation"}
    assert billed_to(shared, instance) == []
    # a dry run that would fail gets the real call's error
    code, message = call_error(
        shared,
        tmp_path,
        "meter-usage",
        *meter_usage_args("prod-ami", now, "VCPU_HOURS", 3),
        "--dry-run",
        **buyer_env(instance),
    )
    assert code == "InvalidUsageDimensionException"
    assert message == "Dimension 'VCPU_HOURS' is not a usage dimension of product 'prod-ami'."


def test_meter_usage_dry_run_error_setting(tmp_path: Path, now: int) -> None:
    """``serve --dry-run-answer error``: the 400 DryRunOperation error; the CLI exits 255."""
    server = ServerProcess(tmp_path / "ledger.db", CATALOG, "--dry-run-answer", "error").start()
    try:
        instance = "i-0cli0000000000005"
        code, message = call_error(
            server,
            tmp_path,
            "meter-usage",
            *meter_usage_args("prod-ami", now, "vcpu_hours", 3),
            "--dry-run",
            **buyer_env(instance),
        )
        assert code == "DryRunOperation"
        assert message == "Request would have succeeded, but DryRun flag is set."
        assert billed_to(server, instance) == []
    finally:
        server.stop()


# --- LicenseArns in AWS's form ----------------------------------------------------------------


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


def test_issuer_license_arns_resolve_customer_to_usage_view(tmp_path: Path, now: int) -> None:
    """tests/data/catalog_issuer_arns.yaml: LicenseArns of account 294406891311 for two buyers.
    resolve-customer answers the agreement's; batch-meter-usage by LicenseArn (no product
    code) bills each record to its agreement's buyer; the usage view shows it."""
    server = ServerProcess(tmp_path / "ledger.db", ISSUER_CATALOG).start()
    try:
        status, body = admin(
            server.url, "GET", f"/_marketmeter/tokens?product=prod-ca&buyer={ALICE}"
        )
        assert status == 200, body
        [token] = body["tokens"]
        assert token["licenseArn"] == ISSUER_ALICE_CA
        resolved = call(
            server, tmp_path, "resolve-customer", f"--registration-token={token['token']}"
        )
        assert resolved == {
            "ProductCode": "prod-ca",
            "CustomerAWSAccountId": ALICE,
            "LicenseArn": ISSUER_ALICE_CA,
        }
        request = {
            "UsageRecords": [
                licensed_record(now, ALICE, ISSUER_ALICE_CA, 5),
                licensed_record(now, BOB, ISSUER_BOB_CA, 6),
            ]
        }
        answer = meter(server, tmp_path, request)
        assert [r["Status"] for r in answer["Results"]] == ["Success", "Success"]
        ids = [r["MeteringRecordId"] for r in answer["Results"]]
        status, body = admin(server.url, "GET", "/_marketmeter/usage?product=prod-ca")
        assert status == 200, body
        assert sorted(
            (r["meteringRecordId"], r["customerAWSAccountId"], r["licenseArn"], r["quantity"])
            for r in body["records"]
        ) == sorted([(ids[0], ALICE, ISSUER_ALICE_CA, 5), (ids[1], BOB, ISSUER_BOB_CA, 6)])
        swapped = {
            "ProductCode": "prod-ca",
            "UsageRecords": [licensed_record(now, ALICE, ISSUER_BOB_CA, 1)],
        }
        assert meter_error(server, tmp_path, swapped) == (
            "InvalidLicenseException",
            f"LicenseArn '{ISSUER_BOB_CA}' does not belong to the record's customer.",
        )
    finally:
        server.stop()


# --- ResolveCustomer -----------------------------------------------------------------------------


def test_resolve_customer(shared: ServerProcess, tmp_path: Path) -> None:
    status, body = admin(
        shared.url, "GET", "/_marketmeter/tokens?product=prod-legacy&buyer=444455556666"
    )
    assert status == 200, body
    token = body["tokens"][0]["token"]
    assert body["tokens"][0]["licenseArn"] == LEGACY_LICENSE

    done = run_command(
        # one argument: a token may begin with "-", which the CLI would read as an option
        tmp_path,
        "resolve-customer",
        [f"--registration-token={token}", "--debug"],
        shared.url,
    )
    assert done.returncode == 0, f"aws exited {done.returncode}:\n{done.stderr}"
    # awscli 1.46 carries its own copy of the service model, older than boto3's: its
    # ResolveCustomerResult has no Metadata, so the CLI parses and prints the other four fields.
    assert json.loads(done.stdout) == {
        "CustomerIdentifier": "cust-alice",
        "ProductCode": "prod-legacy",
        "CustomerAWSAccountId": ALICE,
        "LicenseArn": LEGACY_LICENSE,
    }
    # On the wire the answer carries the agreement id too.
    match = RESPONSE_BODY.search(done.stderr)
    assert match is not None, done.stderr
    assert json.loads(match["body"]) == {
        "CustomerIdentifier": "cust-alice",
        "ProductCode": "prod-legacy",
        "CustomerAWSAccountId": ALICE,
        "LicenseArn": LEGACY_LICENSE,
        "Metadata": {"AgreementId": agreement_id_for(LEGACY_LICENSE)},
    }


def test_resolve_customer_unknown_token(shared: ServerProcess, tmp_path: Path) -> None:
    code, message = call_error(
        shared, tmp_path, "resolve-customer", "--registration-token", "A" * 64
    )
    assert code == "InvalidTokenException"
    assert message == "The registration token is invalid."


# --- RegisterUsage -------------------------------------------------------------------------------


def test_register_usage_signature_verifies_with_the_published_key(
    shared: ServerProcess, tmp_path: Path, now: int
) -> None:
    clock = ClockControl(shared.url)
    clock.set(now)  # frozen: iat is exactly the service clock
    try:
        printed = call(
            shared,
            tmp_path,
            "register-usage",
            "--product-code",
            "prod-container",
            "--public-key-version",
            "1",
            "--nonce",
            "cli-nonce-1",
            **buyer_env("task-cli-1"),
        )
    finally:
        clock.reset()
    assert list(printed) == ["Signature"]
    status, pem = admin(shared.url, "GET", "/_marketmeter/keys/1")
    assert status == 200, pem
    assert jwt.get_unverified_header(printed["Signature"]) == {"alg": "PS256", "typ": "JWT"}
    claims = jwt.decode(printed["Signature"], pem, algorithms=["PS256"])
    assert claims == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "cli-nonce-1",
        "iat": now,
    }


def test_register_usage_unknown_public_key_version(shared: ServerProcess, tmp_path: Path) -> None:
    code, message = call_error(
        shared,
        tmp_path,
        "register-usage",
        "--product-code",
        "prod-container",
        "--public-key-version",
        "2",
        **buyer_env("task-cli-2"),
    )
    assert code == "InvalidPublicKeyVersionException"
    assert message == "Public key version 2 is invalid."
