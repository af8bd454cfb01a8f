"""BatchMeterUsage end to end: the real boto3 client against a real ``marketmeter serve``."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketmeter.store.base import UsageQuery
from marketmeter.store.open import open_store
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess
from tests.e2e.wire_records import record

pytestmark = [pytest.mark.e2e, pytest.mark.reused_server]

ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"


def meter(client: Any, *records: dict[str, Any], product: str | None = "prod-legacy") -> Any:
    params: dict[str, Any] = {"UsageRecords": list(records)}
    if product is not None:
        params["ProductCode"] = product
    return client.batch_meter_usage(**params)


def error_of(client: Any, *records: dict[str, Any], product: str | None = "prod-legacy") -> Any:
    with pytest.raises(ClientError) as raised:
        meter(client, *records, product=product)
    return raised.value.response


def statuses(response: Any) -> list[str]:
    return [r["Status"] for r in response["Results"]]


def test_verdicts_in_request_order_with_echoed_records(client: Any, now: int) -> None:
    response = meter(
        client,
        record(now, quantity=3),
        record(now, "cust-dave"),
        record(now, "cust-carol"),
        record(now, quantity=4),
    )
    assert statuses(response) == [
        "Success",
        "CustomerNotSubscribed",
        "CustomerNotSubscribed",
        "DuplicateRecord",
    ]
    first = response["Results"][0]
    assert uuid.UUID(first["MeteringRecordId"]).version == 4
    assert first["UsageRecord"]["CustomerIdentifier"] == "cust-alice"
    assert first["UsageRecord"]["Quantity"] == 3
    assert int(first["UsageRecord"]["Timestamp"].timestamp()) == now
    assert all("MeteringRecordId" not in r for r in response["Results"][1:])
    assert response["UnprocessedRecords"] == []
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


@pytest.mark.fresh_server
def test_identical_retry_and_duplicate_survive_a_restart(server: ServerProcess, now: int) -> None:
    client = make_client(server.url)
    first = meter(client, record(now, quantity=5), record(now, "cust-bob", "api_calls", 9))
    ids = [r["MeteringRecordId"] for r in first["Results"]]
    server.restart()
    client = make_client(server.url)
    retry = meter(client, record(now, "cust-bob", "api_calls", 9), record(now, quantity=5))
    assert [r["MeteringRecordId"] for r in retry["Results"]] == ids[::-1]
    assert statuses(meter(client, record(now, quantity=6))) == ["DuplicateRecord"]
    server.stop()
    store = open_store(server.db_url)
    try:
        billed = sorted((r.dimension, r.quantity) for r in store.usage_now(UsageQuery()))
    finally:
        store.close_now()
    assert billed == [("api_calls", Decimal(9)), ("users", Decimal(5))]


def test_account_id_and_license_paths(client: Any, now: int) -> None:
    by_license = meter(
        client,
        {
            "Timestamp": now,
            "CustomerAWSAccountId": "444455556666",
            "Dimension": "requests",
            "Quantity": 2,
            "LicenseArn": ALICE_CA,
        },
        {
            "Timestamp": now,
            "CustomerAWSAccountId": "777788889999",
            "Dimension": "requests",
            "Quantity": 2,
            "LicenseArn": BOB_CA,
        },
        product="",  # newer SDKs send "" when unset: treated as absent
    )
    assert statuses(by_license) == ["Success", "Success"]
    by_account = meter(
        client,
        {
            "Timestamp": now,
            "CustomerAWSAccountId": "444455556666",
            "Dimension": "requests",
            "Quantity": 2,
        },
        product="prod-ca",
    )
    assert statuses(by_account) == ["Success"]
    assert (
        by_account["Results"][0]["MeteringRecordId"] != by_license["Results"][0]["MeteringRecordId"]
    )


@pytest.mark.parametrize(
    ("records", "product", "code", "message"),
    [
        (
            [record(0)],
            "no-such-product",
            "InvalidProductCodeException",
            "Product code 'no-such-product' is not a valid SaaS product.",
        ),
        (
            [],
            "no-such-product",
            "InvalidProductCodeException",
            "Product code 'no-such-product' is not a valid SaaS product.",
        ),
        (
            [record(0, dimension="Users")],
            "prod-legacy",
            "InvalidUsageDimensionException",
            "Dimension 'Users' is not a usage dimension of product 'prod-legacy'.",
        ),
        (
            [record(0, CustomerAWSAccountId="444455556666")],
            "prod-legacy",
            "ValidationException",
            "1 validation error detected: usageRecords.1.member has both of customerIdentifier and "
            "customerAWSAccountId: exactly one must be specified",
        ),
        (
            [record(0, quantity=2**31)],
            "prod-legacy",
            "ValidationException",
            "1 validation error detected: Value '2147483648' at 'usageRecords.1.member.quantity' "
            "failed to satisfy constraint: Member must have value less than or equal to 2147483647",
        ),
        (
            [record(0, customer="x" * 256, CustomerAWSAccountId=None)],
            "prod-legacy",
            "ValidationException",
            None,
        ),
        (
            [record(0, UsageAllocations=[{"AllocatedUsageQuantity": 2}])],
            "prod-legacy",
            "InvalidUsageAllocationsException",
            "The sum of allocated usage quantities (2) is not equal to the usage quantity (1).",
        ),
        (
            [
                record(
                    0,
                    UsageAllocations=[
                        {"AllocatedUsageQuantity": 1, "Tags": [{"Key": "k", "Value": "50~"}]}
                    ],
                )
            ],
            "prod-legacy",
            "InvalidTagException",
            None,
        ),
        (
            [
                {
                    "Timestamp": 0,
                    "CustomerAWSAccountId": "444455556666",
                    "Dimension": "requests",
                    "LicenseArn": BOB_CA,
                }
            ],
            "prod-ca",
            "InvalidLicenseException",
            f"LicenseArn '{BOB_CA}' does not belong to the record's customer.",
        ),
    ],
)
def test_whole_request_errors(
    client: Any,
    now: int,
    records: list[dict[str, Any]],
    product: str,
    code: str,
    message: str | None,
) -> None:
    for r in records:
        r["Timestamp"] = now
        if r.get("CustomerAWSAccountId") is None and "CustomerIdentifier" in r:
            r.pop("CustomerAWSAccountId", None)
    response = error_of(client, *records, product=product)
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    if message is not None:
        assert response["Error"]["Message"] == message


def test_26_records_is_a_validation_error(client: Any, now: int) -> None:
    records = [record(now, dimension="users", quantity=i) for i in range(26)]
    response = error_of(client, *records)
    assert response["Error"]["Code"] == "ValidationException"
    assert response["Error"]["Message"].startswith("1 validation error detected: Value '[")
    assert response["Error"]["Message"].endswith(
        "at 'usageRecords' failed to satisfy constraint: Member must have length less than or "
        "equal to 25"
    )


def test_a_record_out_of_the_window_refuses_the_whole_batch(
    server: ServerProcess, now: int
) -> None:
    client = make_client(server.url)
    for stale in (now - 7 * 3600, now + 3600):
        response = error_of(client, record(now), record(stale, "cust-bob"))
        assert response["Error"]["Code"] == "TimestampOutOfBoundsException"
        assert response["Error"]["Message"].startswith(
            f"The timestamp of usageRecords.2 ({stale}) is out of the allowed range"
        )
    assert statuses(meter(client, record(now, quantity=2))) == ["Success"]  # nothing was billed


def test_tag_characters_of_the_models_pattern_are_accepted(client: Any, now: int) -> None:
    tags = [{"Key": "cost#center!", "Value": "a&b<c;d = e"}]
    response = meter(
        client,
        record(now, quantity=2, UsageAllocations=[{"AllocatedUsageQuantity": 2, "Tags": tags}]),
    )
    assert statuses(response) == ["Success"]
    assert response["Results"][0]["UsageRecord"]["UsageAllocations"][0]["Tags"] == tags


# --- the raw wire: what no SDK would send --------------------------------------------------------


def raw(
    server: ServerProcess, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sent = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
    }
    sent.update(headers or {})
    connection.request(method, "/", body=body, headers=sent)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(payload)


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "SerializationException"),
        (b"[]", {}, 400, "SerializationException"),
        (b'{"UsageRecords": "nope"}', {}, 400, "SerializationException"),
        (
            b'{"UsageRecords": [{"Timestamp": "yesterday", "Dimension": "users"}]}',
            {},
            400,
            "SerializationException",
        ),
        (b"{}", {"X-Amz-Target": "AWSMPMeteringService.Nope"}, 400, "UnknownOperationException"),
        (b"{}", {"X-Amz-Target": ""}, 400, "UnknownOperationException"),
        (b'{"UsageRecords": [{}]}', {}, 400, "ValidationException"),
    ],
)
def test_framework_errors(
    server: ServerProcess, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    got_status, got_headers, payload = raw(server, body, headers)
    assert (got_status, payload["__type"], got_headers["x-amzn-errortype"]) == (status, code, code)
    assert "Traceback" not in payload["message"]
    assert uuid.UUID(got_headers["x-amzn-requestid"])


def test_missing_members_are_reported_together(server: ServerProcess) -> None:
    _, _, payload = raw(server, b'{"UsageRecords": [{}]}')
    assert payload["message"] == (
        "2 validation errors detected: Value null at 'usageRecords.1.member.timestamp' failed to "
        "satisfy constraint: Member must not be null; Value null at "
        "'usageRecords.1.member.dimension' failed to satisfy constraint: Member must not be null"
    )


def test_bodies_of_one_megabyte_or_more_are_refused_with_413(server: ServerProcess) -> None:
    padding = b" " * (1024 * 1024)
    status, headers, payload = raw(server, b"{}" + padding)
    assert (status, payload["__type"]) == (413, "RequestEntityTooLargeException")
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    body = b'{"UsageRecords": []}'
    status, _, payload = raw(server, body + b" " * (1024 * 1024 - len(body) - 1))
    assert (status, payload) == (200, {"Results": [], "UnprocessedRecords": []})


@pytest.mark.fresh_server
def test_sigterm_drains_in_flight_requests_and_loses_nothing_acknowledged(
    server: ServerProcess, now: int
) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        client = make_client(server.url)
        batch = 0
        while not stop.is_set():
            # distinct keys per worker and batch: each worker owns one dimension/customer pair
            records = [
                record(now - (batch % 5) * 3600, customer, dimension, batch + 1)
                for customer in ("cust-alice", "cust-bob")
                for dimension in (("users",) if n % 2 else ("api_calls",))
            ]
            batch += 1
            try:
                response = meter(client, *records)
            except Exception:
                return
            with lock:
                acknowledged.extend(
                    r["MeteringRecordId"] for r in response["Results"] if r["Status"] == "Success"
                )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert server.stop(signal.SIGTERM) == 0
    stop.set()
    for thread in threads:
        thread.join()
    assert acknowledged, "the load never got an answer"
    store = open_store(server.db_url)
    try:
        stored = {r.metering_record_id for r in store.usage_now(UsageQuery(limit=100_000))}
    finally:
        store.close_now()
    assert set(acknowledged) <= stored


def test_health_answers_when_ready(server: ServerProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/_marketmeter/health")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200
    assert json.loads(body)["status"] == "ok"


def test_fractional_quantities_from_a_current_boto3(client: Any, now: int) -> None:
    def fractional(quantity: str, customer: str = "cust-alice") -> dict[str, Any]:
        return {
            "Timestamp": now,
            "CustomerIdentifier": customer,
            "Dimension": "users",
            "QuantityAsDecimal": quantity,
        }

    first = meter(client, fractional("12.5"))
    assert statuses(first) == ["Success"]
    assert first["Results"][0]["UsageRecord"]["QuantityAsDecimal"] == "12.5"
    retry = meter(client, fractional("12.500"))
    assert retry["Results"][0]["MeteringRecordId"] == first["Results"][0]["MeteringRecordId"]
    assert statuses(meter(client, fractional("12.6"))) == ["DuplicateRecord"]
    response = error_of(client, {**fractional("1", "cust-bob"), "Quantity": 1})
    assert response["Error"]["Code"] == "ValidationException"
    assert response["Error"]["Message"].endswith(
        "usageRecords.1.member has both quantity and quantityAsDecimal: at most one may be "
        "specified"
    )
