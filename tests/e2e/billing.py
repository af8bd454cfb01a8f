"""A small, known ledger billed through a real server with boto3, for the inspection tests.

Four records are billed (one more is refused as ``CustomerNotSubscribed``), at distinct
timestamps spread over three hours that all lie inside the 6-hour window:

    key  product      customer                      dimension  quantity  timestamp
    A    prod-legacy  cust-alice (444455556666)     users      5         t0
    B    prod-legacy  cust-bob (777788889999)       api_calls  7         t0 + 3600
    D    prod-ca      444455556666 + LicenseArn     requests   13        t0 + 3660
    C    prod-legacy  cust-alice (444455556666)     api_calls  11        t0 + 7200

Oldest usage first, the ledger lists them A, B, D, C.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ALICE_CA_LICENSE = (
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def hour_of(epoch: float) -> int:
    return int(epoch // 3600) * 3600


@dataclass(frozen=True)
class Billed:
    t0: int
    ids: dict[str, str]  # key (A, B, C, D) -> MeteringRecordId boto3 got
    sent_at: float

    def keys(self, *keys: str) -> list[str]:
        return [self.ids[key] for key in keys]


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def bill_sample(client: Any, now: int) -> Billed:
    t0 = hour_of(now) - 3 * 3600 + 600  # 2h50m to 3h50m ago
    sent_at = datetime.now(UTC).timestamp()
    legacy = client.batch_meter_usage(
        ProductCode="prod-legacy",
        UsageRecords=[
            {
                "Timestamp": _at(t0),
                "CustomerIdentifier": "cust-alice",
                "Dimension": "users",
                "Quantity": 5,
            },
            {
                "Timestamp": _at(t0 + 3600),
                "CustomerIdentifier": "cust-bob",
                "Dimension": "api_calls",
                "Quantity": 7,
            },
            {
                "Timestamp": _at(t0 + 7200),
                "CustomerIdentifier": "cust-alice",
                "Dimension": "api_calls",
                "Quantity": 11,
            },
            {
                "Timestamp": _at(t0 + 7200),
                "CustomerIdentifier": "cust-carol",
                "Dimension": "users",
                "Quantity": 3,
            },
        ],
    )
    statuses = [result["Status"] for result in legacy["Results"]]
    assert statuses == ["Success", "Success", "Success", "CustomerNotSubscribed"]
    assert legacy["UnprocessedRecords"] == []
    concurrent = client.batch_meter_usage(
        ProductCode="prod-ca",
        UsageRecords=[
            {
                "Timestamp": _at(t0 + 3660),
                "CustomerAWSAccountId": "444455556666",
                "LicenseArn": ALICE_CA_LICENSE,
                "Dimension": "requests",
                "Quantity": 13,
                "UsageAllocations": [
                    {"AllocatedUsageQuantity": 10, "Tags": [{"Key": "team", "Value": "a"}]},
                    {"AllocatedUsageQuantity": 3},
                ],
            }
        ],
    )
    assert [result["Status"] for result in concurrent["Results"]] == ["Success"]
    a, b, c, _ = (result.get("MeteringRecordId") for result in legacy["Results"])
    d = concurrent["Results"][0]["MeteringRecordId"]
    ids = {"A": a, "B": b, "C": c, "D": d}
    assert all(isinstance(value, str) for value in ids.values())
    assert len(set(ids.values())) == 4
    return Billed(t0=t0, ids=ids, sent_at=sent_at)


def expected_json(billed: Billed, key: str) -> dict[str, Any]:
    """A record as the usage views show it, less ``receivedAt`` (the server's clock)."""
    t0 = billed.t0
    legacy: dict[str, Any] = {
        "productCode": "prod-legacy",
        "licenseArn": None,
        "usageAllocations": None,
    }
    rows: dict[str, dict[str, Any]] = {
        "A": {
            **legacy,
            "customerAWSAccountId": "444455556666",
            "customerIdentifier": "cust-alice",
            "dimension": "users",
            "quantity": 5,
            "timestamp": float(t0),
        },
        "B": {
            **legacy,
            "customerAWSAccountId": "777788889999",
            "customerIdentifier": "cust-bob",
            "dimension": "api_calls",
            "quantity": 7,
            "timestamp": float(t0 + 3600),
        },
        "C": {
            **legacy,
            "customerAWSAccountId": "444455556666",
            "customerIdentifier": "cust-alice",
            "dimension": "api_calls",
            "quantity": 11,
            "timestamp": float(t0 + 7200),
        },
        "D": {
            "productCode": "prod-ca",
            "customerAWSAccountId": "444455556666",
            "customerIdentifier": None,
            "licenseArn": ALICE_CA_LICENSE,
            "dimension": "requests",
            "quantity": 13,
            "timestamp": float(t0 + 3660),
            "usageAllocations": [
                {"quantity": 10, "tags": [{"key": "team", "value": "a"}]},
                {"quantity": 3, "tags": []},
            ],
        },
    }
    row = rows[key]
    return {
        "meteringRecordId": billed.ids[key],
        **row,
        "hour": iso(hour_of(row["timestamp"])),
        "operation": "BatchMeterUsage",
        "instance": None,
    }


def check_records(billed: Billed, records: list[dict[str, Any]], *keys: str) -> None:
    """``records`` are exactly those of ``keys``, in that order, field for field."""
    assert [r["meteringRecordId"] for r in records] == billed.keys(*keys)
    received_bound = datetime.now(UTC).timestamp() + 1
    for record, key in zip(records, keys, strict=True):
        received = dict(record)
        received_at = datetime.fromisoformat(received.pop("receivedAt")).timestamp()
        assert billed.sent_at - 1 <= received_at <= received_bound
        assert received == expected_json(billed, key)
