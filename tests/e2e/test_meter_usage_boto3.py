"""MeterUsage end to end: boto3 buyer clients against a real ``marketmeter serve``.

The buyer is the owner of the signing access key and the instance is the session token
(tests/e2e/buyers.py). Times are moved on the service clock (``/_marketmeter/clock``), never by
sleeping: the usage window and the hour of a record are judged on it.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.buyers import (
    ALICE_KEY,
    CAROL_KEY,
    DAVE_KEY,
    SELLER_KEY,
    ClockControl,
    admin,
    buyer_client,
)
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.reused_server]

ALICE_AMI = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
ALICE_AGENT = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000004"
WINDOW_6H = "less than 6 hours in the past and no more than 5 minutes in the future"
DRY_RUN = "Request would have succeeded, but DryRun flag is set."


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_of(epoch: float) -> int:
    return int(epoch // 3600) * 3600


def two_days_ago(minute: int = 30, second: int = 0) -> int:
    """A whole second two days back, at ``minute:second`` past its hour."""
    return hour_of(time.time()) - 2 * 86400 + minute * 60 + second


@pytest.fixture
def frozen(server: ServerProcess) -> int:
    """The server's service clock frozen at hh:30:00 two days ago; returns that epoch."""
    moment = two_days_ago()
    assert ClockControl(server.url).set(moment)["mode"] == "frozen"
    return moment


def meter(client: Any, timestamp: float, quantity: int | None = 1, **params: Any) -> str:
    call: dict[str, Any] = {
        "ProductCode": "prod-ami",
        "Timestamp": timestamp,
        "UsageDimension": "vcpu_hours",
        **params,
    }
    if quantity is not None:
        call["UsageQuantity"] = quantity
    response = client.meter_usage(**call)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert list(response) == ["MeteringRecordId", "ResponseMetadata"]
    record_id: str = response["MeteringRecordId"]
    return record_id


def refused(client: Any, timestamp: float, quantity: int | None = 1, **params: Any) -> Any:
    """The error response of a MeterUsage call that must fail."""
    call: dict[str, Any] = {
        "ProductCode": "prod-ami",
        "Timestamp": timestamp,
        "UsageDimension": "vcpu_hours",
        **params,
    }
    if quantity is not None:
        call["UsageQuantity"] = quantity
    with pytest.raises(ClientError) as raised:
        client.meter_usage(**call)
    response = raised.value.response
    assert (
        response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
        == (response["Error"]["Code"])
    )
    return response


def error(response: Any) -> tuple[int, str, str]:
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def usage(server: ServerProcess, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = admin(server.url, "GET", f"/_marketmeter/usage?{query}")
    assert status == 200, body
    records: list[dict[str, Any]] = body["records"]
    return records


def duplicate_message(hour: int, product: str = "prod-ami", dimension: str = "vcpu_hours") -> str:
    return (
        f"A metering record for product '{product}', dimension '{dimension}' and the hour "
        f"starting {iso(hour)} was already sent from this instance with a different quantity."
    )


def out_of_window(timestamp: int, window: str = WINDOW_6H) -> tuple[int, str, str]:
    return (
        400,
        "TimestampOutOfBoundsException",
        f"The timestamp ({timestamp}) is out of the allowed range: usage must be {window}.",
    )


# --- the hourly rule ---------------------------------------------------------------------------


def test_success_identical_retry_and_other_quantity(server: ServerProcess, frozen: int) -> None:
    instance_1 = buyer_client(server.url, ALICE_KEY, session="i-0001")
    instance_2 = buyer_client(server.url, ALICE_KEY, session="i-0002")

    first = meter(instance_1, frozen, 17)
    assert uuid.UUID(first).version == 4
    assert str(uuid.UUID(first)) == first
    assert meter(instance_1, frozen, 17) == first
    assert meter(instance_1, frozen, None, UsageQuantityAsDecimal="17.000") == first
    # Another quantity in the same hour from the same instance, even at another minute.
    for timestamp in (frozen, frozen - 30 * 60, frozen + 299):
        assert error(refused(instance_1, timestamp, 18)) == (
            400,
            "DuplicateRequestException",
            duplicate_message(hour_of(frozen)),
        )
    # Another instance (session token) of the same buyer is a separate record.
    second = meter(instance_2, frozen, 18)
    assert second != first
    assert meter(instance_2, frozen, 18) == second

    rows = usage(server)
    assert rows == [
        {
            "meteringRecordId": first,
            "productCode": "prod-ami",
            "customerAWSAccountId": "444455556666",
            "customerIdentifier": "cust-alice",
            "licenseArn": ALICE_AMI,
            "dimension": "vcpu_hours",
            "quantity": 17,
            "timestamp": frozen,
            "hour": iso(hour_of(frozen)),
            "usageAllocations": None,
            "receivedAt": iso(frozen),
            "operation": "MeterUsage",
            "instance": "i-0001",
        },
        {
            **rows[0],
            "meteringRecordId": second,
            "quantity": 18,
            "instance": "i-0002",
        },
    ]


def test_without_a_session_token_the_instance_is_the_access_key(
    server: ServerProcess, frozen: int
) -> None:
    no_session = buyer_client(server.url, ALICE_KEY)

    record_id = meter(no_session, frozen, 2)

    assert meter(no_session, frozen, 2) == record_id
    assert error(refused(no_session, frozen, 3))[1] == "DuplicateRequestException"
    assert [(r["meteringRecordId"], r["instance"]) for r in usage(server)] == [
        (record_id, "AKIATESTALICE0000001")
    ]


def test_the_hour_follows_the_service_clock(server: ServerProcess) -> None:
    clock = ClockControl(server.url)
    start = two_days_ago(minute=59, second=30)
    clock.set(start)
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")

    first = meter(instance, start, 1)
    clock.advance(3600)
    assert clock.state()["epoch"] == start + 3600
    second = meter(instance, start + 3600, 2)  # the new hour: another quantity is fine

    assert second != first
    assert error(refused(instance, start + 3600, 3)) == (
        400,
        "DuplicateRequestException",
        duplicate_message(hour_of(start) + 3600),
    )
    assert error(refused(instance, start, 3)) == (
        400,
        "DuplicateRequestException",
        duplicate_message(hour_of(start)),
    )
    assert meter(instance, start, 1) == first
    assert [(r["meteringRecordId"], r["quantity"], r["receivedAt"]) for r in usage(server)] == [
        (first, 1, iso(start)),
        (second, 2, iso(start + 3600)),
    ]


# --- the window --------------------------------------------------------------------------------


def test_window_is_judged_on_the_service_clock(server: ServerProcess, frozen: int) -> None:
    clock = ClockControl(server.url)
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")
    future = buyer_client(server.url, ALICE_KEY, session="i-future")
    oldest = frozen - 6 * 3600 + 1

    in_window = meter(instance, oldest, 4)
    assert error(refused(instance, frozen - 6 * 3600, 4)) == out_of_window(frozen - 6 * 3600)
    ahead = meter(future, frozen + 300, 1)
    assert error(refused(future, frozen + 301, 1)) == out_of_window(frozen + 301)
    assert meter(instance, oldest, 4) == in_window

    clock.advance(1)  # the oldest record is now exactly 6 hours old

    assert error(refused(instance, oldest, 4)) == out_of_window(oldest)
    assert [r["meteringRecordId"] for r in usage(server)] == [in_window, ahead]


def test_meter_usage_window_option(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "x.db", CATALOG, "--meter-usage-window", "600").start()
    try:
        moment = two_days_ago()
        ClockControl(server.url).set(moment)
        instance = buyer_client(server.url, ALICE_KEY, session="i-0001")

        record_id = meter(instance, moment - 599, 1)
        window = "less than 10 minutes in the past and no more than 5 minutes in the future"
        assert error(refused(instance, moment - 600, 1)) == out_of_window(moment - 600, window)
        # BatchMeterUsage keeps its own (6-hour) window.
        batch = make_client(server.url).batch_meter_usage(
            ProductCode="prod-legacy",
            UsageRecords=[
                {
                    "Timestamp": moment - 3600,
                    "CustomerIdentifier": "cust-alice",
                    "Dimension": "users",
                    "Quantity": 1,
                }
            ],
        )
        assert [r["Status"] for r in batch["Results"]] == ["Success"]
        assert [r["meteringRecordId"] for r in usage(server, product="prod-ami")] == [record_id]
    finally:
        server.stop()


# --- per-request products (ClientToken) ---------------------------------------------------------


def retrying_buyer(url: str, session: str) -> Any:
    """A buyer client that retries what boto3's standard mode retries, 3 attempts in all."""
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ALICE_KEY[0],
        aws_secret_access_key=ALICE_KEY[1],
        aws_session_token=session,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def agent(client: Any, timestamp: int, quantity: int | None = 1, **params: Any) -> str:
    return meter(
        client,
        timestamp,
        quantity,
        ProductCode="prod-agent",
        UsageDimension="invocations",
        **params,
    )


def test_per_request_product_bills_every_client_token(server: ServerProcess, frozen: int) -> None:
    client = retrying_buyer(server.url, "i-0001")

    # boto3 fills a fresh ClientToken itself: two calls, two records, both billed.
    first = agent(client, frozen, 1)
    second = agent(client, frozen, 1)
    assert first != second
    # An explicit token: the same parameters return the first id, from any instance of the buyer.
    third = agent(client, frozen, 5, ClientToken="order-0001")
    assert agent(client, frozen, 5, ClientToken="order-0001") == third
    other_instance = buyer_client(server.url, ALICE_KEY, session="i-0002")
    assert agent(other_instance, frozen, 5, ClientToken="order-0001") == third
    assert (
        agent(client, frozen, None, ClientToken="order-0001", UsageQuantityAsDecimal="5.00")
        == third
    )

    conflict = "ClientToken 'order-0001' was already used with different parameters."
    for timestamp, quantity in ((frozen, 6), (frozen - 1, 5)):
        response = refused(
            client,
            timestamp,
            quantity,
            ProductCode="prod-agent",
            UsageDimension="invocations",
            ClientToken="order-0001",
        )
        assert error(response) == (409, "IdempotencyConflictException", conflict)
        assert response["ResponseMetadata"]["RetryAttempts"] == 0  # not retried

    rows = usage(server, product="prod-agent")
    assert [(r["meteringRecordId"], r["quantity"]) for r in rows] == [
        (first, 1),
        (second, 1),
        (third, 5),
    ]
    assert {(r["operation"], r["instance"], r["licenseArn"]) for r in rows} == {
        ("MeterUsage", "i-0001", ALICE_AGENT)
    }


def raw_meter(server: ServerProcess, body: dict[str, Any], key: str) -> tuple[int, Any]:
    """MeterUsage as an old SDK sends it: no ClientToken unless the body has one."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST",
        "/",
        body=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSMPMeteringService.MeterUsage",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/aws-marketplace/"
                "aws4_request, SignedHeaders=host, Signature=" + "0" * 64
            ),
        },
    )
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


def test_a_client_token_is_required_only_for_per_request_products(
    server: ServerProcess, frozen: int
) -> None:
    agent_call = {
        "ProductCode": "prod-agent",
        "Timestamp": frozen,
        "UsageDimension": "invocations",
        "UsageQuantity": 1,
    }
    assert raw_meter(server, agent_call, ALICE_KEY[0]) == (
        400,
        {
            "__type": "ValidationException",
            "message": "1 validation error detected: Product 'prod-agent' is metered per "
            "request: a clientToken is required",
        },
    )
    hourly_call = {**agent_call, "ProductCode": "prod-ami", "UsageDimension": "vcpu_hours"}
    status, payload = raw_meter(server, hourly_call, ALICE_KEY[0])
    assert status == 200
    assert [r["meteringRecordId"] for r in usage(server)] == [payload["MeteringRecordId"]]
    assert usage(server)[0]["instance"] == ALICE_KEY[0]


# --- DryRun ------------------------------------------------------------------------------------


def test_dry_run_checks_everything_and_records_nothing(server: ServerProcess, frozen: int) -> None:
    """A dry run that would succeed answers HTTP 200 {"MeteringRecordId": "DryRunOperation"},
    as AWS does (cloudquery/plugin-sdk #1966): boto3 returns it, raises nothing."""
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")

    assert meter(instance, frozen, 5, DryRun=True) == "DryRunOperation"
    assert usage(server) == []

    record_id = meter(instance, frozen, 5)  # the dry run did not use up the hour
    assert meter(instance, frozen, 5, DryRun=True) == "DryRunOperation"
    assert error(refused(instance, frozen, 6, DryRun=True)) == (
        400,
        "DuplicateRequestException",
        duplicate_message(hour_of(frozen)),
    )
    assert error(refused(instance, frozen - 6 * 3600, 5, DryRun=True)) == out_of_window(
        frozen - 6 * 3600
    )
    carol = buyer_client(server.url, CAROL_KEY, session="i-carol")
    assert error(refused(carol, frozen, 5, DryRun=True))[1] == "CustomerNotEntitledException"

    assert agent(instance, frozen, 2, ClientToken="dry-1", DryRun=True) == "DryRunOperation"
    assert usage(server, product="prod-agent") == []
    billed = agent(instance, frozen, 2, ClientToken="dry-1")  # the dry run claimed nothing
    assert billed != "DryRunOperation"
    per_request = {"ProductCode": "prod-agent", "UsageDimension": "invocations"}
    assert (
        error(refused(instance, frozen, 3, ClientToken="dry-1", DryRun=True, **per_request))[1]
        == "IdempotencyConflictException"
    )
    assert [r["meteringRecordId"] for r in usage(server)] == [record_id, billed]


def test_a_start_up_dry_run_of_every_dimension_as_aws_sample_does(server: ServerProcess) -> None:
    """aws-samples/aws-marketplace-metered-container-product dry-runs each dimension at start
    and treats any ClientError as a failed start; against marketmeter it starts."""
    instance = buyer_client(server.url, ALICE_KEY, session="task-sample")
    response = instance.meter_usage(
        ProductCode="prod-ami",
        Timestamp=datetime.now(UTC),
        UsageDimension="vcpu_hours",
        UsageQuantity=0,
        DryRun=True,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["MeteringRecordId"] == "DryRunOperation"
    assert usage(server) == []
    assert "a DryRun that would succeed answers HTTP 200" in server.output()


def test_the_dry_run_error_setting(tmp_path: Path) -> None:
    """``serve --dry-run-answer error``: the 400 DryRunOperation error of the API reference's
    wording; a dry run that would fail still gets the real call's error."""
    server = ServerProcess(tmp_path / "x.db", CATALOG, "--dry-run-answer", "error").start()
    try:
        moment = two_days_ago()
        ClockControl(server.url).set(moment)
        instance = buyer_client(server.url, ALICE_KEY, session="i-0001")
        dry_run = (400, "DryRunOperation", DRY_RUN)
        assert error(refused(instance, moment, 5, DryRun=True)) == dry_run
        record_id = meter(instance, moment, 5)
        assert error(refused(instance, moment, 5, DryRun=True)) == dry_run
        assert error(refused(instance, moment, 6, DryRun=True))[1] == "DuplicateRequestException"
        assert (
            error(
                refused(
                    instance,
                    moment,
                    2,
                    ClientToken="dry-1",
                    DryRun=True,
                    ProductCode="prod-agent",
                    UsageDimension="invocations",
                )
            )
            == dry_run
        )
        assert [r["meteringRecordId"] for r in usage(server)] == [record_id]
        assert (
            "a DryRun that would succeed answers the DryRunOperation error "
            "(--dry-run-answer error)\n" in server.output()
        )
    finally:
        server.stop()


# --- who may meter -----------------------------------------------------------------------------


def test_only_entitled_buyers_meter(server: ServerProcess, frozen: int) -> None:
    def not_entitled(account: str) -> tuple[int, str, str]:
        return (
            400,
            "CustomerNotEntitledException",
            f"Customer {account} is not entitled to product 'prod-ami' at the usage "
            f"timestamp ({frozen}).",
        )

    def no_buyer(who: str) -> tuple[int, str, str]:
        return (
            400,
            "CustomerNotEntitledException",
            f"MeterUsage must be signed with a buyer's credentials; {who} belongs to no buyer "
            "of the catalog (list the key under the buyer's access_keys).",
        )

    carol = buyer_client(server.url, CAROL_KEY, session="i-0001")  # suspended
    dave = buyer_client(server.url, DAVE_KEY, session="i-0001")  # no agreement
    seller = buyer_client(server.url, SELLER_KEY, session="i-0001")
    stranger = buyer_client(server.url, ("AKIAUNKNOWN000000001", "x"), session="i-0001")
    unsigned = boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}),
    )

    assert error(refused(carol, frozen)) == not_entitled("222233334444")
    assert error(refused(dave, frozen)) == not_entitled("555566667777")
    assert error(refused(seller, frozen)) == no_buyer("access key AKIATESTSELLER000001")
    assert error(refused(stranger, frozen)) == no_buyer("access key AKIAUNKNOWN000000001")
    assert error(refused(unsigned, frozen)) == no_buyer("unsigned requests")
    assert usage(server) == []


def test_product_dimension_quantity_and_allocation_rules(
    server: ServerProcess, frozen: int
) -> None:
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")

    assert error(refused(instance, frozen, ProductCode="prod-legacy")) == (
        400,
        "InvalidProductCodeException",
        "Product code 'prod-legacy' is not a valid AMI or container product.",
    )
    assert error(refused(instance, frozen, ProductCode="no-such-product")) == (
        400,
        "InvalidProductCodeException",
        "Product code 'no-such-product' is not a valid AMI or container product.",
    )
    assert error(refused(instance, frozen, UsageDimension="VCPU_HOURS")) == (
        400,
        "InvalidUsageDimensionException",
        "Dimension 'VCPU_HOURS' is not a usage dimension of product 'prod-ami'.",
    )
    assert error(refused(instance, frozen, 1, UsageQuantityAsDecimal="1")) == (
        400,
        "ValidationException",
        "1 validation error detected: The request has both usageQuantity and "
        "usageQuantityAsDecimal: at most one may be specified",
    )
    tags = [{"Key": "team", "Value": "blue"}]
    assert error(
        refused(instance, frozen, 3, UsageAllocations=[{"AllocatedUsageQuantity": 2, "Tags": tags}])
    ) == (
        400,
        "InvalidUsageAllocationsException",
        "The sum of allocated usage quantities (2) is not equal to the usage quantity (3).",
    )
    assert usage(server) == []

    allocated = meter(
        instance,
        frozen,
        3,
        UsageAllocations=[
            {"AllocatedUsageQuantity": 2, "Tags": tags},
            {"AllocatedUsageQuantity": 1},
        ],
    )
    [row] = usage(server)
    assert row["meteringRecordId"] == allocated
    assert row["usageAllocations"] == [
        {"quantity": 2, "tags": [{"key": "team", "value": "blue"}]},
        {"quantity": 1, "tags": []},
    ]


# --- durability --------------------------------------------------------------------------------


@pytest.mark.fresh_server
def test_records_survive_a_restart_with_the_same_ids(server: ServerProcess, now: int) -> None:
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")
    hourly = meter(instance, now, 7)
    per_request = agent(instance, now, 2, ClientToken="order-restart")

    server.restart()
    instance = buyer_client(server.url, ALICE_KEY, session="i-0001")

    assert meter(instance, now, 7) == hourly
    assert error(refused(instance, now, 8)) == (
        400,
        "DuplicateRequestException",
        duplicate_message(hour_of(now)),
    )
    assert agent(instance, now, 2, ClientToken="order-restart") == per_request
    conflict = refused(
        instance,
        now,
        3,
        ProductCode="prod-agent",
        UsageDimension="invocations",
        ClientToken="order-restart",
    )
    assert error(conflict)[:2] == (409, "IdempotencyConflictException")
    assert [(r["meteringRecordId"], r["instance"]) for r in usage(server)] == [
        (hourly, "i-0001"),
        (per_request, "i-0001"),
    ]
