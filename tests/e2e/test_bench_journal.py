"""The request journal end to end: every call a real ``marketmeter serve`` answered, as boto3 and
raw HTTP sent it, read back through ``GET /_marketmeter/journal`` with its filters.

One server serves the module (reset before each test); the journal-size tests start their own.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from marketmeter.servicemodel.spec import served_operation_names
from tests.e2e.bench_fixtures import Bench, metering_client, outcome, start_bench
from tests.e2e.buyers import ALICE_KEY, SELLER_KEY, admin
from tests.e2e.wire_records import record

pytestmark = pytest.mark.e2e

ENTRY_KEYS = {
    "id",
    "time",
    "epoch",
    "wallTime",
    "requestId",
    "operation",
    "target",
    "accessKeyId",
    "productCode",
    "status",
    "errorType",
    "verdicts",
    "fault",
    "durationMs",
    "request",
    "response",
}
SIGNATURE = (
    "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/20261123/us-east-1/aws-marketplace/"
    "aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00"
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    yield from start_bench(tmp_path_factory.mktemp("bench-journal"))


@pytest.fixture
def bench(shared: Bench) -> Bench:
    """The module's server, reset (empty ledger and journal, wall clock, no fault)."""
    shared.admin.reset()
    return shared


def journal(bench: Bench, **filters: Any) -> dict[str, Any]:
    query = f"?{urlencode(filters)}" if filters else ""
    status, body = admin(bench.url, "GET", f"/_marketmeter/journal{query}")
    assert status == 200, body
    assert list(body) == ["entries", "stats"]
    return dict(body)


def entries(bench: Bench, **filters: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = journal(bench, **filters)["entries"]
    return found


def ids(bench: Bench, **filters: Any) -> list[int]:
    return [entry["id"] for entry in entries(bench, **filters)]


def bill(client: Any, *records: dict[str, Any], product: str = "prod-legacy") -> Any:
    return client.batch_meter_usage(ProductCode=product, UsageRecords=list(records))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def raw_post(bench: Bench, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST ``body`` to the AWS endpoint as is; returns the status and x-amzn-RequestId."""
    connection = http.client.HTTPConnection("127.0.0.1", bench.server.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=body,
            headers={"Content-Type": "application/x-amz-json-1.1", **headers},
        )
        response = connection.getresponse()
        response.read()
        return response.status, str(response.getheader("x-amzn-RequestId"))
    finally:
        connection.close()


# --- what an entry holds -----------------------------------------------------------------------


def test_a_mixed_batch_is_journaled_as_sent_and_answered(bench: Bench, now: int) -> None:
    client = metering_client(bench.url)
    sent = [
        record(now, quantity=3),
        record(now, quantity=4),  # same buyer, dimension and hour: a duplicate
        record(now, "cust-carol"),  # suspended
    ]
    started = datetime.now(UTC).timestamp()

    response = bill(client, *sent)

    billed = response["Results"][0]
    [entry] = entries(bench)
    assert set(entry) == ENTRY_KEYS
    assert entry["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert entry["operation"] == "BatchMeterUsage"
    assert entry["target"] == "AWSMPMeteringService.BatchMeterUsage"
    assert entry["accessKeyId"] == SELLER_KEY[0]
    assert entry["productCode"] == "prod-legacy"
    assert (entry["status"], entry["errorType"], entry["fault"]) == (200, None, None)
    assert entry["verdicts"] == ["Success", "DuplicateRecord", "CustomerNotSubscribed"]
    assert entry["request"] == {"ProductCode": "prod-legacy", "UsageRecords": sent}
    assert entry["response"] == {
        "Results": [
            {
                "UsageRecord": {**sent[0], "Timestamp": now},
                "Status": "Success",
                "MeteringRecordId": billed["MeteringRecordId"],
            },
            {"UsageRecord": sent[1], "Status": "DuplicateRecord"},
            {"UsageRecord": sent[2], "Status": "CustomerNotSubscribed"},
        ],
        "UnprocessedRecords": [],
    }
    assert entry["durationMs"] > 0
    assert started - 1 <= entry["epoch"] <= datetime.now(UTC).timestamp() + 1
    assert entry["time"] == iso(entry["epoch"])


def test_buyer_calls_and_refusals_are_journaled(bench: Bench, now: int) -> None:
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    metered = alice.meter_usage(
        ProductCode="prod-ami",
        Timestamp=now,
        UsageDimension="vcpu_hours",
        UsageQuantity=2,
        ClientToken="journal-token-1",
    )
    refused = outcome(lambda: bill(metering_client(bench.url), record(now), product="no-such"))

    first, second = entries(bench)
    assert first["requestId"] == metered["ResponseMetadata"]["RequestId"]
    assert (first["operation"], first["accessKeyId"], first["productCode"]) == (
        "MeterUsage",
        ALICE_KEY[0],
        "prod-ami",
    )
    assert (first["status"], first["errorType"], first["verdicts"]) == (200, None, ["Success"])
    assert first["request"] == {
        "ProductCode": "prod-ami",
        "Timestamp": now,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 2,
        "ClientToken": "journal-token-1",
    }
    assert first["response"] == {"MeteringRecordId": metered["MeteringRecordId"]}
    assert refused == "InvalidProductCodeException"
    assert (second["operation"], second["productCode"], second["status"]) == (
        "BatchMeterUsage",
        "no-such",
        400,
    )
    assert (second["errorType"], second["verdicts"]) == ("InvalidProductCodeException", [])
    assert second["response"] == {
        "__type": "InvalidProductCodeException",
        "message": "Product code 'no-such' is not a valid SaaS product.",
    }


def test_calls_the_endpoint_cannot_read_are_journaled(bench: Bench) -> None:
    unknown = raw_post(bench, b"{}", {"X-Amz-Target": "AWSMPMeteringService.Nope"})
    garbled = raw_post(
        bench,
        b"{not json",
        {"X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage", "Authorization": SIGNATURE},
    )

    first, second = entries(bench)
    assert unknown == (400, first["requestId"])
    assert (first["operation"], first["target"], first["accessKeyId"]) == (
        None,
        "AWSMPMeteringService.Nope",
        None,
    )
    assert (first["status"], first["errorType"]) == (400, "UnknownOperationException")
    assert first["request"] == {}
    assert first["response"] == {
        "__type": "UnknownOperationException",
        "message": "Unknown operation AWSMPMeteringService.Nope",
    }
    assert garbled == (400, second["requestId"])
    # the target named a known operation: the entry says which, though its body was unreadable
    assert (second["operation"], second["accessKeyId"], second["productCode"]) == (
        "BatchMeterUsage",
        SELLER_KEY[0],
        None,
    )
    assert (second["status"], second["errorType"]) == (400, "SerializationException")
    assert second["request"] == "{not json"
    assert ids(bench, errorType="UnknownOperationException") == [first["id"]]
    assert ids(bench, errorType="SerializationException") == [second["id"]]


# --- filters -----------------------------------------------------------------------------------


def test_filters_by_operation_product_key_status_and_error(bench: Bench, now: int) -> None:
    seller = metering_client(bench.url)
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    bill(seller, record(now))  # 1
    refused = outcome(lambda: bill(seller, record(now, dimension="nope"), product="prod-ca"))  # 2
    alice.meter_usage(ProductCode="prod-ami", Timestamp=now, UsageDimension="vcpu_hours")  # 3
    bill(seller, record(now, "cust-bob"))  # 4
    unresolved = outcome(lambda: seller.resolve_customer(RegistrationToken="not-a-token"))  # 5
    assert (refused, unresolved) == ("InvalidUsageDimensionException", "InvalidTokenException")
    first = ids(bench)[0]
    one, two, three, four, five = range(first, first + 5)

    assert ids(bench) == [one, two, three, four, five]
    assert ids(bench, operation="BatchMeterUsage") == [one, two, four]
    assert ids(bench, operation="MeterUsage") == [three]
    assert ids(bench, operation="ResolveCustomer") == [five]
    assert ids(bench, product="prod-legacy") == [one, four]
    assert ids(bench, product="prod-ca") == [two]
    assert ids(bench, accessKeyId=ALICE_KEY[0]) == [three]
    assert ids(bench, accessKeyId=SELLER_KEY[0]) == [one, two, four, five]
    assert ids(bench, status=200) == [one, three, four]
    assert ids(bench, status=400) == [two, five]
    assert ids(bench, errorType="InvalidTokenException") == [five]
    assert ids(bench, operation="BatchMeterUsage", status=400) == [two]
    assert ids(bench, errorType="ThrottlingException") == []
    assert ids(bench, errorType="InvalidUsageDimensionException") == [two]


def test_since_and_until_are_service_clock_times(bench: Bench) -> None:
    at_ten = int(time.time()) - 2 * 86400
    at_eleven = at_ten + 3600
    client = metering_client(bench.url)
    bench.admin.clock.set(at_ten)
    bill(client, record(at_ten - 60))
    bench.admin.clock.set(at_eleven)
    bill(client, record(at_eleven - 60, "cust-bob"))
    early, late = entries(bench)

    assert (early["epoch"], late["epoch"]) == (at_ten, at_eleven)
    assert (early["time"], late["time"]) == (iso(at_ten), iso(at_eleven))
    assert early["wallTime"] != early["time"]
    assert ids(bench, since=at_eleven) == [late["id"]]
    assert ids(bench, since=iso(at_eleven)) == [late["id"]]
    assert ids(bench, until=at_eleven) == [early["id"]]  # until is exclusive
    assert ids(bench, since=at_ten, until=at_eleven + 1) == [early["id"], late["id"]]
    assert ids(bench, since=at_ten + 1, until=iso(at_eleven)) == []


def test_limit_takes_the_newest_and_after_pages_forward(bench: Bench, now: int) -> None:
    client = metering_client(bench.url)
    for quantity in range(1, 8):
        bill(client, record(now - 60 * quantity, "cust-bob", quantity=quantity))
    all_ids = ids(bench)
    assert len(all_ids) == 7
    assert all_ids == list(range(all_ids[0], all_ids[0] + 7))

    assert ids(bench, limit=3) == all_ids[-3:]
    pages = []
    after = all_ids[0] - 1
    while page := ids(bench, after=after, limit=3):
        pages.append(page)
        after = page[-1]
    assert pages == [all_ids[0:3], all_ids[3:6], all_ids[6:7]]
    assert ids(bench, after=all_ids[-1]) == []
    assert ids(bench, operation="BatchMeterUsage", after=all_ids[1], limit=2) == all_ids[2:4]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "operation=Nope",
            "operation",
            f"must be one of {', '.join(served_operation_names())}",
        ),
        ("limit=0", "limit", "must be a whole number from 1 to 10000"),
        ("status=abc", "status", "must be a whole number from 100 to 599"),
        ("since=yesterday", "since", "'yesterday' is neither ISO 8601 nor epoch seconds"),
        (
            "colour=red",
            "colour",
            "unknown filter; known: operation, product, accessKeyId, status, errorType, since, "
            "until, after, limit",
        ),
    ],
    ids=["operation", "limit", "status", "since", "unknown"],
)
def test_bad_filters_are_refused_naming_the_filter(
    bench: Bench, query: str, field: str, message: str
) -> None:
    assert admin(bench.url, "GET", f"/_marketmeter/journal?{query}") == (
        400,
        {"error": message, "field": field},
    )


# --- clearing and bounds -----------------------------------------------------------------------


def test_delete_empties_the_journal(bench: Bench, now: int) -> None:
    client = metering_client(bench.url)
    bill(client, record(now))
    bill(client, record(now))
    last = ids(bench)[-1]

    status, body = admin(bench.url, "DELETE", "/_marketmeter/journal")

    assert (status, body) == (
        200,
        {
            "stats": {
                "entries": 0,
                "bytes": 0,
                "maxEntries": 10_000,
                "maxBytes": 12 * 1024 * 1024,
                "dropped": 0,
                "lastId": last,
            }
        },
    )
    assert entries(bench) == []
    bill(client, record(now))
    assert ids(bench) == [last + 1]  # ids keep counting


@pytest.fixture
def tiny_journal(tmp_path: Path) -> Iterator[Bench]:
    yield from start_bench(tmp_path, "--journal-size", "5", "--journal-bytes", "100000")


def test_journal_size_keeps_only_the_newest_calls(tiny_journal: Bench, now: int) -> None:
    assert (
        "  bench:   quota off; journal of the last 5 calls, 100,000 bytes of bodies "
        in tiny_journal.server.output()
    )
    client = metering_client(tiny_journal.url)
    answers = [bill(client, record(now, quantity=n)) for n in range(1, 9)]

    found = journal(tiny_journal)
    assert [e["id"] for e in found["entries"]] == [4, 5, 6, 7, 8]
    assert [e["requestId"] for e in found["entries"]] == [
        a["ResponseMetadata"]["RequestId"] for a in answers[3:]
    ]
    stats = found["stats"]
    assert (stats["entries"], stats["maxEntries"], stats["dropped"], stats["lastId"]) == (
        5,
        5,
        3,
        8,
    )
    assert stats["maxBytes"] == 100_000


@pytest.fixture
def no_journal(tmp_path: Path) -> Iterator[Bench]:
    yield from start_bench(tmp_path, "--journal-size", "0")


def test_journal_size_zero_records_nothing(no_journal: Bench, now: int) -> None:
    client = metering_client(no_journal.url)
    assert [r["Status"] for r in bill(client, record(now))["Results"]] == ["Success"]

    found = journal(no_journal)
    assert found["entries"] == []
    stats = found["stats"]
    assert (stats["entries"], stats["maxEntries"], stats["dropped"], stats["lastId"]) == (
        0,
        0,
        0,
        0,
    )
