"""Strict SigV4 auth end to end: real clients against ``marketmeter serve --auth sigv4``.

Requests signed by boto3, the AWS CLI and the JS SDK v3 with the catalog's keys are accepted
and billed; requests that are unsigned, signed with an unknown key or a wrong secret, signed
too long ago, for another service, with a body changed after signing, with an unsigned
payload, or with a key of the wrong kind or seller are refused with the error AWS's JSON 1.1
services send (docs/wire-protocol.md), never retried by boto3, and bill nothing.

The tampering matrix signs a request with botocore's ``SigV4Auth`` (the oracle), changes one
signed element, and sends the bytes with httpx over real HTTP. ``SignedAt`` is botocore's
signer with the signing time given instead of read from the clock, so a stale signature needs
no patching.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import boto3
import httpx
import jwt
import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.buyers import ALICE_KEY, SELLER_KEY
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import batch, record

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]

ADMIN_TOKEN = "strict-e2e-admin-token"
TARGET = "AWSMPMeteringService."
JSON_11 = "application/x-amz-json-1.1"
REGION = "us-east-1"
UNKNOWN_KEY = ("AKIAUNKNOWN000000001", "whatever-secret")
WRONG_SECRET = (SELLER_KEY[0], "not-the-seller-secret")
ALICE = "444455556666"
SELLER = "111122223333"
LEGACY_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
AMI_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
JS_DIR = Path(__file__).parent / "js"

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
BAD_CONTENT_HASH = (
    "The provided 'x-amz-content-sha256' header does not match what was computed: "
    "this service signs the body's SHA-256 (UNSIGNED-PAYLOAD and streaming "
    "payloads are not accepted)."
)
UNKNOWN_KEY_MESSAGE = "The security token included in the request is invalid."
WRONG_SERVICE = "Credential should be scoped to correct service: 'aws-marketplace'. "
EXPIRED = re.compile(
    r"^Signature expired: (?P<signed>\d{8}T\d{6}Z) is now earlier than "
    r"(?P<limit>\d{8}T\d{6}Z) \((?P<now>\d{8}T\d{6}Z) - 5 min\.\)$"
)

NOT_YET_CURRENT = re.compile(
    r"^Signature not yet current: (?P<signed>\d{8}T\d{6}Z) is still later than "
    r"(?P<limit>\d{8}T\d{6}Z) \((?P<now>\d{8}T\d{6}Z) \+ 5 min\.\)$"
)

# Record keys (customer, dimension, hours back; 0 or 2, so that a test that starts in the next
# hour cannot meet another's key): every accepted call bills a key of its own;
# every refused BatchMeterUsage carries REFUSED, which no accepted call ever bills, so a
# refusal that slipped through would add a ledger row.
REFUSED = ("cust-alice", "api_calls", 0)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``serve --auth sigv4`` for the whole file; its tests bill keys of their own."""
    db = tmp_path_factory.mktemp("strict") / "ledger.db"
    process = ServerProcess(db, CATALOG, "--auth", "sigv4", "--admin-token", ADMIN_TOKEN)
    process.start()
    try:
        yield process
    finally:
        process.stop()


# --- helpers -------------------------------------------------------------------------------------


def admin(server: ServerProcess, method: str, path: str, body: Any = None) -> httpx.Response:
    """The admin API, with the admin token strict mode asks for."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=10)


def ledger(server: ServerProcess) -> list[dict[str, Any]]:
    response = admin(server, "GET", "/_marketmeter/usage")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["records"]
    return rows


def hour_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp - timestamp % 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def saas_record(now: int, key: tuple[str, str, int], quantity: int = 1) -> dict[str, Any]:
    customer, dimension, hours_back = key
    return record(now - hours_back * 3600, customer, dimension, quantity)


def billed_row(server: ServerProcess, now: int, key: tuple[str, str, int]) -> dict[str, Any]:
    """The one ledger row of a record key, without its receivedAt (checked for shape)."""
    customer, dimension, hours_back = key
    hour = hour_of(now - hours_back * 3600)
    [row] = [
        r
        for r in ledger(server)
        if (r["customerIdentifier"], r["dimension"], r["hour"]) == (customer, dimension, hour)
    ]
    assert ISO_MICROS.fullmatch(row.pop("receivedAt")), row
    return row


def legacy_row(
    metering_record_id: str, timestamp: int, customer: str, dimension: str
) -> dict[str, Any]:
    account = {"cust-alice": ALICE, "cust-bob": "777788889999"}[customer]
    return {
        "meteringRecordId": metering_record_id,
        "productCode": "prod-legacy",
        "customerAWSAccountId": account,
        "customerIdentifier": customer,
        "licenseArn": None,
        "dimension": dimension,
        "quantity": 1,
        "timestamp": timestamp,
        "hour": hour_of(timestamp),
        "usageAllocations": None,
        "operation": "BatchMeterUsage",
        "instance": None,
    }


def _boto3_batch(*records: dict[str, Any], product: str = "prod-legacy") -> dict[str, Any]:
    """boto3 takes the wire shape, timestamps as datetimes."""
    usage = [{**r, "Timestamp": datetime.fromtimestamp(r["Timestamp"], UTC)} for r in records]
    return {"ProductCode": product, "UsageRecords": usage}


def boto3_client(
    server: ServerProcess, key: tuple[str, str], region: str = REGION, **kwargs: Any
) -> Any:
    """boto3's client with botocore's standard retries (3 attempts), as a user would have it."""
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
        **kwargs,
    )


class SignedAt(SigV4Auth):
    """botocore's SigV4 signer at a given time (``None``: now), keeping the canonical request
    and string to sign it computed, which the server's mismatch message must repeat."""

    def __init__(
        self, key: tuple[str, str], service: str, region: str, at: datetime | None
    ) -> None:
        super().__init__(Credentials(key[0], key[1]), service, region)
        self.at = at
        self.canonical = ""
        self.signed_string = ""

    def add_auth(self, request: AWSRequest) -> None:
        at = self.at or datetime.now(UTC)
        request.context["timestamp"] = at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        self.canonical = self.canonical_request(request)
        self.signed_string = self.string_to_sign(request, self.canonical)
        self._inject_signature_to_request(request, self.signature(self.signed_string, request))


@dataclass(frozen=True, slots=True)
class Wire:
    """A request as httpx sends it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def send(self) -> httpx.Response:
        return httpx.request(
            self.method, self.url, headers=self.headers, content=self.body, timeout=10
        )

    def with_header(self, name: str, value: str) -> Wire:
        return replace(self, headers={**self.headers, name: value})

    def with_authorization(self, old: str, new: str) -> Wire:
        authorization = self.headers["Authorization"]
        assert old in authorization, authorization
        return self.with_header("Authorization", authorization.replace(old, new, 1))


def signed(
    server: ServerProcess,
    operation: str,
    params: dict[str, Any],
    key: tuple[str, str] = SELLER_KEY,
    *,
    service: str = "aws-marketplace",
    region: str = REGION,
    at: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Wire, SignedAt]:
    """A JSON 1.1 call signed by botocore's SigV4 signer, ready for httpx."""
    request = AWSRequest(
        "POST",
        f"{server.url}/",
        data=json.dumps(params).encode(),
        headers={"Content-Type": JSON_11, "X-Amz-Target": TARGET + operation, **(headers or {})},
    )
    signer = SignedAt(key, service, region, at)
    signer.add_auth(request)
    prepared = request.prepare()
    sent = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return Wire("POST", prepared.url, sent, prepared.body), signer


def assert_refused(response: httpx.Response, error: str, message: str | None = None) -> str:
    """A 400 ``error`` in body and header; the message equals ``message`` when given.
    Returns the message."""
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == error
    assert response.headers["content-type"] == JSON_11
    body = response.json()
    assert list(body) == ["__type", "message"], body
    assert body["__type"] == error
    if message is not None:
        assert body["message"] == message
    text: str = body["message"]
    return text


def assert_mismatch(response: httpx.Response) -> None:
    message = assert_refused(response, "InvalidSignatureException")
    assert message.startswith(MISMATCH + "\n\nThe Canonical String for this request should have")


def refused_batch(now: int, product: str = "prod-legacy") -> dict[str, Any]:
    return batch(saas_record(now, REFUSED), product=product)


# --- 1. accepted: boto3, the AWS CLI, the JS SDK ---------------------------------------------


def test_boto3_seller_batch_meter_usage_is_billed(strict: ServerProcess, now: int) -> None:
    key = ("cust-alice", "users", 0)
    client = boto3_client(strict, SELLER_KEY)
    response = client.batch_meter_usage(**_boto3_batch(saas_record(now, key)))
    [result] = response["Results"]
    assert result["Status"] == "Success"
    assert response["UnprocessedRecords"] == []
    assert UUID.fullmatch(result["MeteringRecordId"])
    assert billed_row(strict, now, key) == legacy_row(
        result["MeteringRecordId"], now, "cust-alice", "users"
    )


def test_boto3_seller_resolve_customer(strict: ServerProcess) -> None:
    minted = admin(
        strict,
        "POST",
        "/_marketmeter/tokens",
        {"productCode": "prod-legacy", "buyerAccountId": ALICE},
    )
    assert minted.status_code == 201, minted.text
    client = boto3_client(strict, SELLER_KEY)
    response = client.resolve_customer(RegistrationToken=minted.json()["token"])
    response.pop("ResponseMetadata")
    assert response == {
        "CustomerIdentifier": "cust-alice",
        "ProductCode": "prod-legacy",
        "CustomerAWSAccountId": ALICE,
        "LicenseArn": LEGACY_LICENSE,
        "Metadata": {"AgreementId": agreement_id_for(LEGACY_LICENSE)},
    }


def test_boto3_buyer_meter_usage_with_session_token(strict: ServerProcess, now: int) -> None:
    instance = "i-0strict000000001"
    client = boto3_client(strict, ALICE_KEY, aws_session_token=instance)
    response = client.meter_usage(
        ProductCode="prod-ami",
        Timestamp=datetime.fromtimestamp(now, UTC),
        UsageDimension="vcpu_hours",
        UsageQuantity=2,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    metering_record_id = response["MeteringRecordId"]
    [row] = [r for r in ledger(strict) if r["instance"] == instance]
    assert ISO_MICROS.fullmatch(row.pop("receivedAt"))
    assert row == {
        "meteringRecordId": metering_record_id,
        "productCode": "prod-ami",
        "customerAWSAccountId": ALICE,
        "customerIdentifier": "cust-alice",
        "licenseArn": AMI_LICENSE,
        "dimension": "vcpu_hours",
        "quantity": 2,
        "timestamp": now,
        "hour": hour_of(now),
        "usageAllocations": None,
        "operation": "MeterUsage",
        "instance": instance,
    }


def test_boto3_buyer_register_usage(strict: ServerProcess) -> None:
    client = boto3_client(strict, ALICE_KEY, aws_session_token="task-strict-1")
    before = int(time.time())
    response = client.register_usage(
        ProductCode="prod-container", PublicKeyVersion=1, Nonce="strict-nonce"
    )
    pem = admin(strict, "GET", "/_marketmeter/keys/1")
    assert pem.status_code == 200, pem.text
    claims = jwt.decode(response["Signature"], pem.text, algorithms=["PS256"])
    assert before <= claims.pop("iat") <= time.time()
    assert claims == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "strict-nonce",
    }


def aws_cli(
    tmp_path: Path, server: ServerProcess, key: tuple[str, str], request: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """``aws meteringmarketplace batch-meter-usage`` (awscli v1) with static env credentials."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=key[0],
        AWS_SECRET_ACCESS_KEY=key[1],
        AWS_MAX_ATTEMPTS="1",
        AWS_CONFIG_FILE=str(tmp_path / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-such-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    argv = [sys.executable, "-m", "awscli", "meteringmarketplace", "batch-meter-usage"]
    argv += ["--cli-input-json", json.dumps(request), "--endpoint-url", server.url]
    argv += ["--region", REGION, "--output", "json"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_aws_cli_batch_meter_usage(strict: ServerProcess, tmp_path: Path, now: int) -> None:
    key = ("cust-bob", "users", 0)
    done = aws_cli(tmp_path, strict, SELLER_KEY, batch(saas_record(now, key)))
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["Results"]
    assert result["Status"] == "Success"
    assert billed_row(strict, now, key) == legacy_row(
        result["MeteringRecordId"], now, "cust-bob", "users"
    )


def test_aws_cli_wrong_secret(strict: ServerProcess, tmp_path: Path, now: int) -> None:
    before = ledger(strict)
    done = aws_cli(tmp_path, strict, WRONG_SECRET, refused_batch(now))
    assert done.returncode == 255, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().startswith(
        "An error occurred (InvalidSignatureException) when calling the BatchMeterUsage "
        f"operation: {MISMATCH}"
    )
    assert ledger(strict) == before


@pytest.fixture(scope="module")
def node() -> str:
    """node, with the JS SDK installed (``npm ci --prefix tests/e2e/js``)."""
    executable = shutil.which("node")
    sdk = JS_DIR / "node_modules" / "@aws-sdk" / "client-marketplace-metering"
    if executable is None or not sdk.is_dir():
        pytest.fail("the JS SDK tests need node and `npm ci --prefix tests/e2e/js`")
    return executable


@pytest.mark.node
def test_js_sdk_seller_batch_and_buyer_meter_usage(
    node: str, strict: ServerProcess, tmp_path: Path, now: int
) -> None:
    key = ("cust-bob", "api_calls", 0)
    instance = "i-0strictjs0000001"
    buyer = {"accessKeyId": ALICE_KEY[0], "secretAccessKey": ALICE_KEY[1]}
    wrong = {"accessKeyId": WRONG_SECRET[0], "secretAccessKey": WRONG_SECRET[1]}
    meter_usage = {
        "ProductCode": "prod-ami",
        "Timestamp": now,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
    }
    jobs = [
        {"operation": "BatchMeterUsage", "input": batch(saas_record(now, key))},
        {
            "operation": "MeterUsage",
            "input": meter_usage,
            "credentials": {**buyer, "sessionToken": instance},
        },
        {"operation": "BatchMeterUsage", "input": refused_batch(now), "credentials": wrong},
        {"operation": "BatchMeterUsage", "input": refused_batch(now), "credentials": buyer},
    ]
    before = ledger(strict)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-such-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    done = subprocess.run(
        [node, str(JS_DIR / "call.mjs")],
        input=json.dumps([{**job, "endpoint": strict.url} for job in jobs]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    metered, buyer_metered, mismatch, denied = map(json.loads, done.stdout.splitlines())

    assert metered["ok"] is True, metered
    [result] = metered["output"]["Results"]
    assert result["Status"] == "Success"
    assert billed_row(strict, now, key) == legacy_row(
        result["MeteringRecordId"], now, "cust-bob", "api_calls"
    )

    assert buyer_metered["ok"] is True, buyer_metered
    [row] = [r for r in ledger(strict) if r["instance"] == instance]
    assert (row["meteringRecordId"], row["productCode"], row["quantity"]) == (
        buyer_metered["output"]["MeteringRecordId"],
        "prod-ami",
        1,
    )

    # Errors outside the service model: the SDK's base class, a client fault, status 400.
    assert mismatch["name"] == "InvalidSignatureException"
    assert mismatch["message"].startswith(MISMATCH)
    assert denied["name"] == "AccessDeniedException"
    assert denied["message"] == access_denied(ALICE, "BatchMeterUsage", "buyer", ALICE_KEY[0])
    for error in (mismatch, denied):
        assert (error["ok"], error["status"], error["fault"]) == (False, 400, "client")
        assert (error["isTyped"], error["isServiceException"]) == (False, True)
    assert len(ledger(strict)) == len(before) + 2  # the two refused calls billed nothing


def test_signed_four_minutes_ago_is_accepted(strict: ServerProcess, now: int) -> None:
    """Within the 5 minutes of skew: accepted."""
    key = ("cust-alice", "users", 2)
    at = datetime.now(UTC) - timedelta(minutes=4)
    wire, _ = signed(strict, "BatchMeterUsage", batch(saas_record(now, key)), at=at)
    response = wire.send()
    assert response.status_code == 200, response.text
    [result] = response.json()["Results"]
    assert result["Status"] == "Success"
    timestamp = now - 2 * 3600
    assert billed_row(strict, now, key) == legacy_row(
        result["MeteringRecordId"], timestamp, "cust-alice", "users"
    )


# --- 2. refused, with AWS's errors, never retried, nothing billed ---------------------------


def test_unsigned_request(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    response = httpx.post(
        f"{strict.url}/",
        content=json.dumps(refused_batch(now)).encode(),
        headers={"Content-Type": JSON_11, "X-Amz-Target": TARGET + "BatchMeterUsage"},
    )
    assert_refused(response, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert ledger(strict) == before


@pytest.mark.parametrize(
    ("key", "error"),
    [
        pytest.param(UNKNOWN_KEY, "UnrecognizedClientException", id="unknown-key"),
        pytest.param(WRONG_SECRET, "InvalidSignatureException", id="wrong-secret"),
    ],
)
def test_boto3_bad_credentials_are_refused_and_not_retried(
    strict: ServerProcess, now: int, key: tuple[str, str], error: str
) -> None:
    before = ledger(strict)
    client = boto3_client(strict, key)
    with pytest.raises(ClientError) as raised:
        client.batch_meter_usage(**_boto3_batch(saas_record(now, REFUSED)))
    response = raised.value.response
    assert response["Error"]["Code"] == error
    message = response["Error"]["Message"]
    if error == "UnrecognizedClientException":
        assert message == UNKNOWN_KEY_MESSAGE
    else:
        assert message.startswith(MISMATCH)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert ledger(strict) == before


def test_wrong_secret_message_repeats_the_canonical_request(
    strict: ServerProcess, now: int
) -> None:
    """The server's canonical request and string to sign are botocore's, to the byte."""
    wire, signer = signed(strict, "BatchMeterUsage", refused_batch(now), WRONG_SECRET)
    assert_refused(
        wire.send(),
        "InvalidSignatureException",
        f"{MISMATCH}\n\nThe Canonical String for this request should have been\n"
        f"'{signer.canonical}'\n\nThe String-to-Sign should have been\n"
        f"'{signer.signed_string}'\n",
    )


def test_signed_six_minutes_ago_has_expired(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now), at=at)
    sent_at = datetime.now(UTC).replace(microsecond=0)
    message = assert_refused(wire.send(), "InvalidSignatureException")
    received_by = datetime.now(UTC)
    expired = EXPIRED.fullmatch(message)
    assert expired is not None, message
    assert expired["signed"] == at.strftime(SIGV4_TIMESTAMP)
    server_now = datetime.strptime(expired["now"], SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    assert sent_at <= server_now <= received_by
    assert expired["limit"] == (server_now - timedelta(minutes=5)).strftime(SIGV4_TIMESTAMP)
    assert ledger(strict) == before


def test_signed_six_minutes_ahead_is_not_yet_current(strict: ServerProcess, now: int) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=6)
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now), at=at)
    message = assert_refused(wire.send(), "InvalidSignatureException")
    early = NOT_YET_CURRENT.fullmatch(message)
    assert early is not None, message
    assert early["signed"] == at.strftime(SIGV4_TIMESTAMP)
    server_now = datetime.strptime(early["now"], SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    assert early["limit"] == (server_now + timedelta(minutes=5)).strftime(SIGV4_TIMESTAMP)


def test_signed_for_execute_api(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now), service="execute-api")
    assert_refused(wire.send(), "InvalidSignatureException", WRONG_SERVICE)
    assert ledger(strict) == before


@pytest.mark.parametrize("region", ["ca-west-1", "mx-central-1", "local"])
def test_boto3_in_a_region_without_the_service_is_refused(
    strict: ServerProcess, now: int, region: str
) -> None:
    """AWS offers the Metering Service in the regions of botocore's endpoints.json
    (https://docs.aws.amazon.com/marketplace/latest/APIReference/metering-regions.html); a
    scope naming another region gets what AWS's JSON services answer, not retried."""
    before = ledger(strict)
    client = boto3_client(strict, SELLER_KEY, region=region)
    with pytest.raises(ClientError) as raised:
        client.batch_meter_usage(**_boto3_batch(saas_record(now, REFUSED)))
    response = raised.value.response
    assert (response["Error"]["Code"], response["Error"]["Message"]) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert ledger(strict) == before


@pytest.mark.parametrize("region", ["eu-central-2", "cn-northwest-1", "us-gov-west-1"])
def test_every_region_of_the_service_is_accepted(strict: ServerProcess, region: str) -> None:
    empty = {"ProductCode": "prod-legacy", "UsageRecords": []}
    wire, _ = signed(strict, "BatchMeterUsage", empty, region=region)
    response = wire.send()
    assert response.status_code == 200, response.text
    assert response.json() == {"Results": [], "UnprocessedRecords": []}


def test_body_changed_under_the_declared_content_hash(strict: ServerProcess, now: int) -> None:
    """The declared X-Amz-Content-SHA256 is signed and right for the original body; one body
    byte changed after signing is caught by the hash the server computes itself."""
    before = ledger(strict)
    params = refused_batch(now)
    body = json.dumps(params).encode()
    declared = {"X-Amz-Content-SHA256": sha256(body).hexdigest()}
    wire, signer = signed(strict, "BatchMeterUsage", params, headers=declared)
    assert "x-amz-content-sha256" in signer.canonical.splitlines()[-2].split(";")
    tampered = replace(wire, body=body.replace(b'"Quantity": 1', b'"Quantity": 9'))
    assert len(tampered.body) == len(wire.body)
    assert tampered.body != wire.body
    assert_refused(tampered.send(), "InvalidSignatureException", BAD_CONTENT_HASH)
    assert ledger(strict) == before


def test_unsigned_payload_is_refused(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    headers = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    wire, signer = signed(strict, "BatchMeterUsage", refused_batch(now), headers=headers)
    assert signer.canonical.endswith("\nUNSIGNED-PAYLOAD")
    assert_refused(wire.send(), "InvalidSignatureException", BAD_CONTENT_HASH)
    assert ledger(strict) == before


def access_denied(account: str, operation: str, kind: str, key_id: str) -> str:
    other = "buyer" if kind == "seller" else "seller"
    return (
        f"User: arn:aws:iam::{account}:root is not authorized to perform: "
        f"aws-marketplace:{operation} with a {kind}'s access key {key_id}; "
        f"{operation} is called with a {other}'s credentials"
    )


def _buyer_batch(now: int) -> dict[str, Any]:
    return _boto3_batch(saas_record(now, REFUSED))


def _seller_meter_usage(now: int) -> dict[str, Any]:
    return {
        "ProductCode": "prod-ami",
        "Timestamp": datetime.fromtimestamp(now, UTC),
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
    }


# (boto3 method, key, its parameters for ``now``); the key is of the other kind.
WRONG_KIND: dict[str, tuple[str, tuple[str, str], Callable[[int], dict[str, Any]]]] = {
    "buyer-BatchMeterUsage": ("batch_meter_usage", ALICE_KEY, _buyer_batch),
    "buyer-ResolveCustomer": (
        "resolve_customer",
        ALICE_KEY,
        lambda now: {"RegistrationToken": "t" * 32},
    ),
    "seller-MeterUsage": ("meter_usage", SELLER_KEY, _seller_meter_usage),
    "seller-RegisterUsage": (
        "register_usage",
        SELLER_KEY,
        lambda now: {"ProductCode": "prod-container", "PublicKeyVersion": 1},
    ),
}


@pytest.mark.parametrize("case", list(WRONG_KIND.values()), ids=list(WRONG_KIND))
def test_key_of_the_wrong_kind_is_access_denied(
    strict: ServerProcess,
    now: int,
    case: tuple[str, tuple[str, str], Callable[[int], dict[str, Any]]],
) -> None:
    method, key, params = case
    before = ledger(strict)
    client = boto3_client(strict, key)
    with pytest.raises(ClientError) as raised:
        getattr(client, method)(**params(now))
    response = raised.value.response
    operation = "".join(word.capitalize() for word in method.split("_"))
    kind, account = ("buyer", ALICE) if key == ALICE_KEY else ("seller", SELLER)
    assert response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": access_denied(account, operation, kind, key[0]),
    }
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == (
        "AccessDeniedException"
    )
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert ledger(strict) == before


def test_seller_metering_another_sellers_product(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now, product="prod-other"))
    assert_refused(
        wire.send(),
        "InvalidProductCodeException",
        "Product code 'prod-other' is not a valid SaaS product.",
    )
    assert ledger(strict) == before


def test_seller_resolving_a_token_of_another_sellers_product(strict: ServerProcess) -> None:
    minted = admin(
        strict,
        "POST",
        "/_marketmeter/tokens",
        {"productCode": "prod-other", "buyerAccountId": ALICE},
    )
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]
    wire, _ = signed(strict, "ResolveCustomer", {"RegistrationToken": token})
    assert_refused(wire.send(), "InvalidTokenException", "The registration token is invalid.")


# --- 3. the tampering matrix -----------------------------------------------------------------


def _shift_date(wire: Wire, seconds: int) -> Wire:
    signed_at = datetime.strptime(wire.headers["X-Amz-Date"], SIGV4_TIMESTAMP)
    return wire.with_header(
        "X-Amz-Date", (signed_at + timedelta(seconds=seconds)).strftime(SIGV4_TIMESTAMP)
    )


def _other_host(wire: Wire) -> Wire:
    port = httpx.URL(wire.url).port
    return wire.with_header("Host", f"localhost:{port}")


def _one_body_byte(wire: Wire) -> Wire:
    body = wire.body.replace(b'"Quantity": 1', b'"Quantity": 2')
    assert body != wire.body
    return replace(wire, body=body)


def _scope_day_before(wire: Wire) -> Wire:
    day = wire.headers["X-Amz-Date"][:8]
    before = (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    return wire.with_authorization(f"/{day}/", f"/{before}/")


def _flip_signature_digit(wire: Wire) -> Wire:
    authorization = wire.headers["Authorization"]
    last = authorization[-1]
    return wire.with_header("Authorization", authorization[:-1] + ("0" if last != "0" else "1"))


@dataclass(frozen=True, slots=True)
class Mutation:
    """One signed element changed after signing. A refusal for a mismatched signature must
    show the change: ``shows`` is what the canonical request or string to sign in the
    server's message then contains."""

    change: Callable[[Wire], Wire]
    error: str = "InvalidSignatureException"
    message: str | None = None  # None: the signature mismatch message
    shows: Callable[[Wire, SignedAt], str] | None = None
    key: tuple[str, str] = SELLER_KEY  # what the request is signed with


def _unchanged(wire: Wire) -> Wire:
    return wire


def _as_botocore_signed(wire: Wire, signer: SignedAt) -> str:
    """The server rebuilt botocore's canonical request exactly: only the key differs."""
    return f"'{signer.canonical}'"


def _header(name: str) -> Callable[[Wire, SignedAt], str]:
    return lambda wire, _: f"\n{name.lower()}:{wire.headers[name]}\n"


MUTATIONS: dict[str, Mutation] = {
    "method-GET": Mutation(lambda w: replace(w, method="GET"), shows=lambda w, _: "'GET\n/\n\n"),
    "path-/x": Mutation(lambda w: replace(w, url=w.url + "x"), shows=lambda w, _: "'POST\n/x\n\n"),
    "query-?a=b": Mutation(
        lambda w: replace(w, url=w.url + "?a=b"), shows=lambda w, _: "'POST\n/\na=b\n"
    ),
    "header-host": Mutation(_other_host, shows=_header("Host")),
    "header-x-amz-date-plus-1s": Mutation(lambda w: _shift_date(w, 1), shows=_header("X-Amz-Date")),
    "header-x-amz-target": Mutation(
        lambda w: w.with_header("X-Amz-Target", TARGET + "ResolveCustomer"),
        shows=_header("X-Amz-Target"),
    ),
    "header-content-type": Mutation(
        lambda w: w.with_header("Content-Type", "application/x-amz-json-1.0"),
        shows=_header("Content-Type"),
    ),
    "body-one-byte": Mutation(
        _one_body_byte, shows=lambda w, _: f"\n{sha256(w.body).hexdigest()}'\n"
    ),
    "scope-region": Mutation(
        lambda w: w.with_authorization("/us-east-1/", "/us-west-2/"),
        shows=lambda w, _: "/us-west-2/aws-marketplace/aws4_request\n",
    ),
    "scope-service": Mutation(
        lambda w: w.with_authorization("/aws-marketplace/", "/execute-api/"),
        message=WRONG_SERVICE,
    ),
    "access-key-another-known": Mutation(
        lambda w: w.with_authorization(SELLER_KEY[0], ALICE_KEY[0]), shows=_as_botocore_signed
    ),
    "access-key-unknown": Mutation(
        lambda w: w.with_authorization(SELLER_KEY[0], UNKNOWN_KEY[0]),
        error="UnrecognizedClientException",
        message=UNKNOWN_KEY_MESSAGE,
    ),
    "secret": Mutation(_unchanged, shows=_as_botocore_signed, key=WRONG_SECRET),
    "signature-one-digit": Mutation(_flip_signature_digit, shows=_as_botocore_signed),
    "signed-headers-without-x-amz-target": Mutation(
        lambda w: w.with_authorization(";x-amz-target,", ","),
        message="'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
    ),
    "signed-headers-without-host": Mutation(
        lambda w: w.with_authorization(";host;", ";"),
        message="'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    ),
}


def test_the_untampered_request_is_accepted(strict: ServerProcess, now: int) -> None:
    """The matrix's control: the same construction, unchanged, bills its record."""
    key = ("cust-bob", "users", 2)
    wire, _ = signed(strict, "BatchMeterUsage", batch(saas_record(now, key)))
    response = wire.send()
    assert response.status_code == 200, response.text
    [result] = response.json()["Results"]
    assert billed_row(strict, now, key) == legacy_row(
        result["MeteringRecordId"], now - 2 * 3600, "cust-bob", "users"
    )


@pytest.mark.parametrize("mutation", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_tampered_request_is_refused(strict: ServerProcess, now: int, mutation: Mutation) -> None:
    before = ledger(strict)
    wire, signer = signed(strict, "BatchMeterUsage", refused_batch(now), mutation.key)
    tampered = mutation.change(wire)
    response = tampered.send()
    if mutation.message is not None:
        assert_refused(response, mutation.error, mutation.message)
    else:
        message = assert_refused(response, mutation.error)
        assert message.startswith(f"{MISMATCH}\n\nThe Canonical String for this request ")
        assert mutation.shows is not None
        assert mutation.shows(tampered, signer) in message, message
    assert ledger(strict) == before


def test_credential_scope_of_the_day_before(strict: ServerProcess, now: int) -> None:
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now))
    amz_date = wire.headers["X-Amz-Date"]
    day_before = (datetime.strptime(amz_date[:8], "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    assert_refused(
        _scope_day_before(wire).send(),
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{day_before}' != '{amz_date[:8]}', from '{amz_date}'.",
    )


def test_signed_session_token_changed(strict: ServerProcess, now: int) -> None:
    """botocore signs X-Amz-Security-Token: another instance's token breaks the signature."""
    before = ledger(strict)
    params = {
        "ProductCode": "prod-ami",
        "Timestamp": now,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
    }
    token = {"X-Amz-Security-Token": "i-0strict000000009"}
    wire, signer = signed(strict, "MeterUsage", params, ALICE_KEY, headers=token)
    assert "x-amz-security-token:i-0strict000000009" in signer.canonical.splitlines()
    assert_mismatch(wire.with_header("X-Amz-Security-Token", "i-0strict000000010").send())
    assert ledger(strict) == before


def test_unsigned_session_token_is_refused(strict: ServerProcess, now: int) -> None:
    before = ledger(strict)
    params = {
        "ProductCode": "prod-ami",
        "Timestamp": now,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
    }
    wire, signer = signed(strict, "MeterUsage", params, ALICE_KEY)
    assert "x-amz-security-token" not in signer.canonical
    response = wire.with_header("X-Amz-Security-Token", "i-0strictinjected01").send()
    assert_refused(
        response,
        "InvalidSignatureException",
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
    )
    assert ledger(strict) == before


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(
            "Bearer abc",
            "Unsupported AWS 'algorithm': 'Bearer'. Authorization=Bearer abc",
            id="other-scheme",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/20260101/us-east-1/"
            "aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target",
            "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 "
            "Credential=AKIATESTSELLER000001/20260101/us-east-1/aws-marketplace/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-target",
            id="no-signature",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/us-east-1, "
            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKIATESTSELLER000001/us-east-1'",
            id="short-credential",
        ),
    ],
)
def test_malformed_authorization_header(
    strict: ServerProcess, now: int, authorization: str, message: str
) -> None:
    before = ledger(strict)
    wire, _ = signed(strict, "BatchMeterUsage", refused_batch(now))
    response = wire.with_header("Authorization", authorization).send()
    assert_refused(response, "IncompleteSignatureException", message)
    assert ledger(strict) == before


# --- 4. open mode still takes unsigned requests ----------------------------------------------


def test_open_mode_accepts_an_unsigned_request(server: ServerProcess, now: int) -> None:
    response = httpx.post(
        f"{server.url}/",
        content=json.dumps(batch(record(now))).encode(),
        headers={"Content-Type": JSON_11, "X-Amz-Target": TARGET + "BatchMeterUsage"},
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["Results"]
    assert result["Status"] == "Success"
    status = httpx.get(f"{server.url}/_marketmeter/usage")
    [row] = status.json()["records"]
    assert row["meteringRecordId"] == result["MeteringRecordId"]
