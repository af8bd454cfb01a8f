"""Responses out: the one place that turns results and errors into AWS JSON bytes.

Success: 200, ``application/x-amz-json-1.1`` (``-1.0`` for a JSON 1.0 service: each response
carries its service's content type, ``protocol.services``). Error: ``{"__type", "message"}``
body and the ``x-amzn-ErrorType`` header (botocore reads the body, the JS and Go SDKs prefer
the header), with the error's status. PascalCase member names are written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from marketmeter.errors import AwsError
from marketmeter.metering.types import (
    BatchMeterUsageResult,
    MeterUsageResult,
    RegisterUsageResult,
    ResolveCustomerResult,
    UsageAllocation,
    UsageRecord,
    UsageRecordResult,
)

__all__ = [
    "CONTENT_TYPE",
    "WireResponse",
    "batch_meter_usage_result",
    "error",
    "headers",
    "meter_usage_result",
    "register_usage_result",
    "resolve_customer_result",
    "success",
]

CONTENT_TYPE = b"application/x-amz-json-1.1"


@dataclass(frozen=True, slots=True)
class WireResponse:
    status: int
    body: bytes
    error_type: str | None = None
    content_type: bytes = CONTENT_TYPE


def success(payload: dict[str, Any], content_type: bytes = CONTENT_TYPE) -> WireResponse:
    return WireResponse(200, orjson.dumps(payload), content_type=content_type)


def error(
    failure: AwsError, content_type: bytes = CONTENT_TYPE, body: bytes | None = None
) -> WireResponse:
    """The error as AWS's JSON services send it; ``body`` replaces ``{"__type", "message"}``
    for a service whose errors carry more members."""
    if body is None:
        body = orjson.dumps({"__type": failure.code, "message": failure.message})
    return WireResponse(failure.http_status, body, failure.code, content_type)


def headers(response: WireResponse, request_id: str) -> list[tuple[bytes, bytes]]:
    """The response's headers: content type and length, ``x-amzn-RequestId``, and for an error
    ``x-amzn-ErrorType``."""
    fields = [
        (b"content-type", response.content_type),
        (b"content-length", str(len(response.body)).encode()),
        (b"x-amzn-RequestId", request_id.encode()),
    ]
    if response.error_type is not None:
        fields.append((b"x-amzn-ErrorType", response.error_type.encode()))
    return fields


def _allocation(allocation: UsageAllocation) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if allocation.quantity is not None:
        wire["AllocatedUsageQuantity"] = allocation.quantity
    if allocation.quantity_decimal is not None:
        wire["AllocatedUsageQuantityAsDecimal"] = allocation.quantity_decimal
    if allocation.tags is not None:
        wire["Tags"] = [{"Key": tag.key, "Value": tag.value} for tag in allocation.tags]
    return wire


def usage_record(record: UsageRecord) -> dict[str, Any]:
    """A record echoed as received (absent members stay absent)."""
    wire: dict[str, Any] = {"Timestamp": record.timestamp, "Dimension": record.dimension}
    if record.customer_identifier is not None:
        wire["CustomerIdentifier"] = record.customer_identifier
    if record.customer_aws_account_id is not None:
        wire["CustomerAWSAccountId"] = record.customer_aws_account_id
    if record.license_arn is not None:
        wire["LicenseArn"] = record.license_arn
    if record.quantity is not None:
        wire["Quantity"] = record.quantity
    if record.quantity_decimal is not None:
        wire["QuantityAsDecimal"] = record.quantity_decimal
    if record.allocations is not None:
        wire["UsageAllocations"] = [_allocation(a) for a in record.allocations]
    return wire


def _result(result: UsageRecordResult) -> dict[str, Any]:
    wire: dict[str, Any] = {"UsageRecord": usage_record(result.record), "Status": result.status}
    if result.metering_record_id is not None:
        wire["MeteringRecordId"] = result.metering_record_id
    return wire


def batch_meter_usage_result(result: BatchMeterUsageResult) -> dict[str, Any]:
    return {
        "Results": [_result(r) for r in result.results],
        "UnprocessedRecords": [usage_record(r) for r in result.unprocessed],
    }


def meter_usage_result(result: MeterUsageResult) -> dict[str, Any]:
    return {"MeteringRecordId": result.metering_record_id}


def resolve_customer_result(result: ResolveCustomerResult) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if result.customer_identifier is not None:
        wire["CustomerIdentifier"] = result.customer_identifier
    wire["ProductCode"] = result.product_code
    wire["CustomerAWSAccountId"] = result.customer_aws_account_id
    wire["LicenseArn"] = result.license_arn
    wire["Metadata"] = {"AgreementId": result.agreement_id}
    return wire


def register_usage_result(result: RegisterUsageResult) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if result.public_key_rotation_timestamp is not None:
        stamp = result.public_key_rotation_timestamp
        wire["PublicKeyRotationTimestamp"] = int(stamp) if stamp.is_integer() else stamp
    wire["Signature"] = result.signature
    return wire
