"""GetEntitlements through botocore both ways: botocore's serializer → our parser (every filter
key, several values each), our serializer → botocore's parser (every value type, with and
without ExpirationDate and NextToken)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from marketmeter.entitlement.types import (
    EntitlementFilter,
    EntitlementRecord,
    GetEntitlementsRequest,
    GetEntitlementsResult,
)
from marketmeter.protocol import serialize
from marketmeter.protocol.parse import RequestParser, get_entitlements_request
from marketmeter.servicemodel.spec import ENTITLEMENT, METERING, model_of

OPERATION = model_of(ENTITLEMENT).operation_model("GetEntitlements")
ARN = "arn:aws:license-manager::294406891311:license:l-a0000000000000000000000000000001"


def test_botocores_request_parses_to_the_typed_request() -> None:
    params = {
        "ProductCode": "ent-contract",
        "Filter": {
            "CUSTOMER_IDENTIFIER": ["a", "b"],
            "DIMENSION": ["AdminUsers", "ratio"],
            "CUSTOMER_AWS_ACCOUNT_ID": ["444455556666"],
            "LICENSE_ARN": [ARN],
        },
        "NextToken": "tok",
        "MaxResults": 5,
    }
    wire = create_serializer("json").serialize_to_request(params, OPERATION)
    target = wire["headers"]["X-Amz-Target"]
    assert target == "AWSMPEntitlementService.GetEntitlements"
    assert wire["headers"]["Content-Type"] == "application/x-amz-json-1.1"
    parsed = RequestParser((METERING, ENTITLEMENT)).parse(target, wire["body"])
    assert parsed.operation == "GetEntitlements"
    assert get_entitlements_request(parsed.params) == GetEntitlementsRequest(
        product_code="ent-contract",
        filters={
            EntitlementFilter.CUSTOMER_IDENTIFIER: ("a", "b"),
            EntitlementFilter.DIMENSION: ("AdminUsers", "ratio"),
            EntitlementFilter.CUSTOMER_AWS_ACCOUNT_ID: ("444455556666",),
            EntitlementFilter.LICENSE_ARN: (ARN,),
        },
        next_token="tok",
        max_results=5,
    )


def record(value: bool | int | float | str, expiration: float | None) -> EntitlementRecord:
    return EntitlementRecord("p", "d", "444455556666", ARN, value, "cust", expiration)


def parsed(result: GetEntitlementsResult) -> dict[str, Any]:
    body = orjson.dumps(serialize.get_entitlements_result(result))
    response = {"status_code": 200, "headers": {}, "body": body}
    out = create_parser("json").parse(response, OPERATION.output_shape)
    out.pop("ResponseMetadata", None)
    return dict(out)


def test_every_value_type_reaches_botocore() -> None:
    result = GetEntitlementsResult(
        (record(True, 2082758400), record(7, None), record(0.25, 1.5), record("gold", None)),
        "next",
    )
    out = parsed(result)
    assert [item["Value"] for item in out["Entitlements"]] == [
        {"BooleanValue": True},
        {"IntegerValue": 7},
        {"DoubleValue": 0.25},
        {"StringValue": "gold"},
    ]
    first = out["Entitlements"][0]
    assert first["ExpirationDate"] == datetime(2036, 1, 1, tzinfo=UTC)
    assert first["CustomerIdentifier"] == "cust"
    assert "ExpirationDate" not in out["Entitlements"][1]
    assert out["NextToken"] == "next"


def test_no_entitlements_is_an_empty_object() -> None:
    assert serialize.get_entitlements_result(GetEntitlementsResult(())) == {}
    assert parsed(GetEntitlementsResult(())) == {}
