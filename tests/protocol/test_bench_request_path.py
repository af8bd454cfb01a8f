"""The test bench in the request's path, in process on each backend: what a fault rule or the
quota does to a call, what reaches the ledger, and what the journal keeps of it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from marketmeter.app import MarketmeterApp
from marketmeter.config import Settings
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.store.base import OperatorStore, UsageQuery
from marketmeter.testbench.controls import BenchControls, QuotaProfile
from marketmeter.testbench.faults import FaultInjector, parse_rules
from marketmeter.testbench.journal import Journal, JournalEntry, JournalQuery
from marketmeter.testbench.quotas import QuotaLimiter

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
HOUR = int(NOW.timestamp()) // 3600 * 3600
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/20261123/us-east-1/aws-marketplace/"
    "aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00"
)


class Bench:
    def __init__(self, store: OperatorStore, quota: str = "off") -> None:
        self.monotonic = 0.0
        self.controls = BenchControls(
            faults=FaultInjector(random.Random(7)),
            quotas=QuotaLimiter(monotonic=lambda: self.monotonic),
            journal=Journal(),
            startup_quota=QuotaProfile(quota),
        )
        self.store = store
        self.app = MarketmeterApp(
            Settings(),
            store,
            FixedClock(NOW),
            SequentialIds(),
            SequentialIds(start=1000),
            bench=self.controls,
        )

    def rules(self, *rules: dict[str, Any]) -> None:
        self.controls.faults.set_rules(parse_rules(list(rules)))

    def call(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mm") as client:
                return await client.post(
                    "/",
                    content=orjson.dumps(body),
                    headers={
                        "x-amz-target": f"AWSMPMeteringService.{operation}",
                        "content-type": "application/x-amz-json-1.1",
                        "authorization": AUTH,
                    },
                )

        response = asyncio.run(send())
        return response.status_code, response.json()

    def journal(self) -> list[JournalEntry]:
        return self.controls.journal.query(JournalQuery())

    def billed(self) -> list[tuple[str, str]]:
        return [
            (r.customer_identifier or "", r.dimension) for r in self.store.usage_now(UsageQuery())
        ]


def record(customer: str, dimension: str = "users", timestamp: int = HOUR) -> dict[str, Any]:
    return {
        "Timestamp": timestamp,
        "CustomerIdentifier": customer,
        "Dimension": dimension,
        "Quantity": 1,
    }


BATCH = [
    record("cust-alice"),
    record("cust-bob"),
    record("cust-alice", "api_calls"),
    record("cust-bob", "api_calls"),
]


def test_held_back_records_come_back_unprocessed_and_are_not_billed(
    store: OperatorStore,
) -> None:
    bench = Bench(store)
    bench.rules({"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [1, 3]}})
    status, body = bench.call(
        "BatchMeterUsage", {"ProductCode": "prod-legacy", "UsageRecords": BATCH}
    )
    assert status == 200
    assert [r["UsageRecord"] for r in body["Results"]] == [BATCH[0], BATCH[2]]
    assert body["UnprocessedRecords"] == [BATCH[1], BATCH[3]]
    assert sorted(bench.billed()) == [("cust-alice", "api_calls"), ("cust-alice", "users")]
    [entry] = bench.journal()
    assert entry.verdicts == ("Success", "Unprocessed", "Success", "Unprocessed")
    assert entry.fault == "fault rule 1: 2 unprocessed records"
    assert (entry.operation, entry.product_code, entry.status) == (
        "BatchMeterUsage",
        "prod-legacy",
        200,
    )


def test_the_whole_batch_is_still_validated_when_records_are_held_back(
    store: OperatorStore,
) -> None:
    bench = Bench(store)
    bench.rules({"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [1]}})
    stale = record("cust-bob", timestamp=HOUR - 7 * 3600)
    status, body = bench.call(
        "BatchMeterUsage", {"ProductCode": "prod-legacy", "UsageRecords": [BATCH[0], stale]}
    )
    assert (status, body["__type"]) == (400, "TimestampOutOfBoundsException")
    assert "usageRecords.2 " in body["message"]
    assert bench.billed() == []


def test_an_injected_error_stops_the_call_before_the_rules(store: OperatorStore) -> None:
    bench = Bench(store)
    bench.rules(
        {"operation": "BatchMeterUsage", "times": 1, "error": {"code": "ThrottlingException"}}
    )
    request = {"ProductCode": "prod-legacy", "UsageRecords": BATCH[:1]}
    assert bench.call("BatchMeterUsage", request) == (
        400,
        {"__type": "ThrottlingException", "message": "Rate exceeded"},
    )
    assert bench.billed() == []
    status, body = bench.call("BatchMeterUsage", request)
    assert (status, body["Results"][0]["Status"]) == (200, "Success")
    first, second = bench.journal()
    assert (first.error_type, first.fault, first.verdicts) == (
        "ThrottlingException",
        "fault rule 1: ThrottlingException",
        (),
    )
    assert (second.error_type, second.fault, second.verdicts) == (None, None, ("Success",))


def test_the_status_of_an_injected_error_can_be_chosen(store: OperatorStore) -> None:
    bench = Bench(store)
    bench.rules({"error": {"code": "ThrottlingException", "statusCode": 503, "message": "slow"}})
    status, body = bench.call(
        "MeterUsage", {"ProductCode": "prod-ami", "Timestamp": HOUR, "UsageDimension": "vcpu_hours"}
    )
    assert (status, body) == (503, {"__type": "ThrottlingException", "message": "slow"})


def test_quota_throttles_per_access_key_and_refills(store: OperatorStore) -> None:
    bench = Bench(store)
    bench.controls.quotas.configure("custom", {"BatchMeterUsage": 2})
    request = {"ProductCode": "prod-legacy", "UsageRecords": BATCH[:1]}
    statuses = [bench.call("BatchMeterUsage", request)[0] for _ in range(3)]
    assert statuses == [200, 200, 400]
    bench.monotonic += 0.5  # one call's worth at 2/s
    assert [bench.call("BatchMeterUsage", request)[0] for _ in range(2)] == [200, 400]
    throttled = [e for e in bench.journal() if e.status == 400]
    assert [e.fault for e in throttled] == [
        "quota: BatchMeterUsage over its rate for AKIATESTSELLER000001 in us-east-1"
    ] * 2


def test_the_journal_keeps_bodies_verdicts_and_the_callers_key(store: OperatorStore) -> None:
    bench = Bench(store)
    request = {
        "ProductCode": "prod-legacy",
        "UsageRecords": [record("cust-alice"), record("cust-carol")],
    }
    bench.call("BatchMeterUsage", request)
    bench.call(
        "BatchMeterUsage", {**request, "UsageRecords": [{**record("cust-alice"), "Quantity": 2}]}
    )
    first, second = bench.journal()
    assert first.verdicts == ("Success", "CustomerNotSubscribed")
    assert second.verdicts == ("DuplicateRecord",)
    assert orjson.loads(first.request_body) == request
    assert orjson.loads(first.response_body)["Results"][1]["Status"] == "CustomerNotSubscribed"
    assert first.access_key_id == "AKIATESTSELLER000001"
    assert first.time == NOW.timestamp()
    assert first.request_id == "00000000-0000-4000-8000-000000001000"


def test_calls_refused_before_parsing_are_journaled_without_an_operation(
    store: OperatorStore,
) -> None:
    bench = Bench(store)
    assert bench.call("NoSuchOperation", {})[0] == 400
    [entry] = bench.journal()
    assert (entry.operation, entry.target, entry.error_type) == (
        None,
        "AWSMPMeteringService.NoSuchOperation",
        "UnknownOperationException",
    )


@pytest.mark.parametrize("rule_region", ["us-east-1", "eu-west-1"])
def test_rules_match_the_signed_region(store: OperatorStore, rule_region: str) -> None:
    bench = Bench(store)
    bench.rules({"region": rule_region, "error": {"code": "InternalServiceErrorException"}})
    status, _ = bench.call(
        "BatchMeterUsage", {"ProductCode": "prod-legacy", "UsageRecords": BATCH[:1]}
    )
    assert status == (500 if rule_region == "us-east-1" else 200)
