"""Round trips through botocore, the SDK whose model is marketmeter's source of truth.

- botocore's JSON serializer → our ``RequestParser``: a full input for every operation (every
  member of every structure set) is accepted as is, and BatchMeterUsage's typed request carries
  the same values.
- our serializer → botocore's JSON parser: a BatchMeterUsage result, the MeterUsage,
  ResolveCustomer (legacy and concurrent-agreements) and RegisterUsage (current and retired key
  version) results, and every error class come back with the same values, codes, messages and
  statuses (``PublicKeyRotationTimestamp`` as an aware datetime).
- a botocore client calling MeterUsage, ResolveCustomer or RegisterUsage raises, for every error
  that operation can answer (its modelled error shapes and the framework errors it produces),
  the client's modelled exception class (``ClientError`` for framework errors) with our code,
  message and HTTP status.
- the modelled error classes are exactly the error shapes of the four operations.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore
import botocore.parsers
import botocore.serialize
import botocore.session
import orjson
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError

from marketmeter import errors
from marketmeter.catalog.model import agreement_id_for
from marketmeter.errors import ENTITLEMENT_ERRORS, MODELLED_ERRORS, AwsError
from marketmeter.metering.types import (
    BatchMeterUsageRequest,
    BatchMeterUsageResult,
    MeterUsageResult,
    RecordStatus,
    RegisterUsageResult,
    ResolveCustomerResult,
    Tag,
    UsageAllocation,
    UsageRecord,
    UsageRecordResult,
)
from marketmeter.protocol import serialize
from marketmeter.protocol.parse import RequestParser, batch_meter_usage_request
from marketmeter.servicemodel.spec import ENTITLEMENT, model_of, service_model
from marketmeter.servicemodel.validation import compile_shape, validate

OPERATIONS = ("BatchMeterUsage", "MeterUsage", "RegisterUsage", "ResolveCustomer")

T0 = datetime(2026, 11, 23, 12, 13, 20, tzinfo=UTC)  # 1795436000
T1 = datetime(2026, 11, 23, 12, 15, 0, tzinfo=UTC)  # 1795436100

ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"

# Every member of every structure of each operation's input is set at least once.
FULL_INPUTS: dict[str, dict[str, Any]] = {
    "BatchMeterUsage": {
        "UsageRecords": [
            {
                "Timestamp": T0,
                "CustomerIdentifier": "cust-alice",
                "Dimension": "users",
                "Quantity": 3,
                "UsageAllocations": [
                    {
                        "AllocatedUsageQuantity": 2,
                        "Tags": [
                            {"Key": "team", "Value": "a#1 & b!"},
                            {"Key": "cost-center", "Value": "x=1;y<2"},
                        ],
                    },
                    {"AllocatedUsageQuantity": 1},
                ],
                "CustomerAWSAccountId": "444455556666",
                "LicenseArn": ALICE_CA,
            },
            {
                "Timestamp": T1,
                "CustomerIdentifier": "cust-bob",
                "Dimension": "api_calls",
                "QuantityAsDecimal": "9999999999.999999",
                "UsageAllocations": [
                    {
                        "AllocatedUsageQuantityAsDecimal": "9999999999.999999",
                        "Tags": [{"Key": "env", "Value": "prod/eu@1"}],
                    }
                ],
                "CustomerAWSAccountId": "777788889999",
                "LicenseArn": BOB_CA,
            },
        ],
        "ProductCode": "prod-legacy",
    },
    "MeterUsage": {
        "ProductCode": "prod-ami",
        "Timestamp": T0,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 4,
        "UsageQuantityAsDecimal": "4.5",
        "DryRun": True,
        "UsageAllocations": [
            {"AllocatedUsageQuantity": 3, "Tags": [{"Key": "team", "Value": "ml"}]},
            {"AllocatedUsageQuantityAsDecimal": "1.5"},
        ],
        "ClientToken": "7d3f1c2e-5b8a-4e29-9c61-0f4e2a8b9d10",
    },
    "RegisterUsage": {"ProductCode": "prod-container", "PublicKeyVersion": 1, "Nonce": "n-42"},
    "ResolveCustomer": {"RegistrationToken": "token-abc/+=="},
}

# What botocore must send for each input: the same members, timestamps as integer epochs.
WIRE_INPUTS: dict[str, dict[str, Any]] = {
    "BatchMeterUsage": {
        "UsageRecords": [
            {**FULL_INPUTS["BatchMeterUsage"]["UsageRecords"][0], "Timestamp": 1795436000},
            {**FULL_INPUTS["BatchMeterUsage"]["UsageRecords"][1], "Timestamp": 1795436100},
        ],
        "ProductCode": "prod-legacy",
    },
    "MeterUsage": {**FULL_INPUTS["MeterUsage"], "Timestamp": 1795436000},
    "RegisterUsage": FULL_INPUTS["RegisterUsage"],
    "ResolveCustomer": FULL_INPUTS["ResolveCustomer"],
}

FRAMEWORK_ERRORS: tuple[type[AwsError], ...] = (
    errors.ValidationException,
    errors.SerializationException,
    errors.UnknownOperationException,
    errors.RequestEntityTooLargeException,
    errors.RequestHeaderFieldsTooLargeException,
    errors.RequestTimeoutException,
    errors.ServiceUnavailableException,
    errors.MissingAuthenticationTokenException,
    errors.UnrecognizedClientException,
    errors.InvalidSignatureException,
    errors.IncompleteSignatureException,
    errors.AccessDeniedException,
    errors.DryRunOperation,
)
ALL_ERRORS = MODELLED_ERRORS + FRAMEWORK_ERRORS
NON_400 = {
    "InternalServiceErrorException": 500,
    "IdempotencyConflictException": 409,
    "RequestEntityTooLargeException": 413,
    "RequestHeaderFieldsTooLargeException": 431,
    "RequestTimeoutException": 408,
    "ServiceUnavailableException": 503,
}
REQUEST_ID = "00000000-0000-4000-8000-000000001000"
RECORD_ID = "00000000-0000-4000-8000-000000000001"

# The framework errors (not in the model) each buyer-side or registration operation can answer.
OPERATION_FRAMEWORK_ERRORS: dict[str, tuple[type[AwsError], ...]] = {
    "MeterUsage": (
        errors.ValidationException,
        errors.SerializationException,
        errors.DryRunOperation,
    ),
    "ResolveCustomer": (errors.ValidationException, errors.SerializationException),
    "RegisterUsage": (errors.ValidationException, errors.SerializationException),
}


def _members_seen(shape: Any, value: Any, seen: set[tuple[str, str]]) -> None:
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                seen.add((shape.name, name))
                _members_seen(member, value[name], seen)
    elif shape.type_name == "list":
        for item in value:
            _members_seen(shape.member, item, seen)


def _all_members(shape: Any, found: set[tuple[str, str]]) -> None:
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if (shape.name, name) not in found:
                found.add((shape.name, name))
                _all_members(member, found)
    elif shape.type_name == "list":
        _all_members(shape.member, found)


def _operation(name: str) -> Any:
    return service_model().operation_model(name)


# --- botocore's serializer → our parser --------------------------------------------------------


def test_inputs_cover_every_operation() -> None:
    assert set(FULL_INPUTS) == set(OPERATIONS) == set(service_model().operation_names)


@pytest.mark.parametrize("name", OPERATIONS)
def test_full_inputs_set_every_member(name: str) -> None:
    shape = _operation(name).input_shape
    expected: set[tuple[str, str]] = set()
    _all_members(shape, expected)
    seen: set[tuple[str, str]] = set()
    _members_seen(shape, FULL_INPUTS[name], seen)
    assert seen == expected


@pytest.mark.parametrize("name", OPERATIONS)
def test_botocore_request_parses(name: str) -> None:
    request = botocore.serialize.create_serializer("json").serialize_to_request(
        copy.deepcopy(FULL_INPUTS[name]), _operation(name)
    )
    target = request["headers"]["X-Amz-Target"]
    assert target == f"AWSMPMeteringService.{name}"
    assert request["headers"]["Content-Type"] == "application/x-amz-json-1.1"
    assert (request["method"], request["url_path"]) == ("POST", "/")

    parsed = RequestParser().parse(target, request["body"])

    assert parsed.operation == name
    assert parsed.params == WIRE_INPUTS[name]


def test_botocore_batch_meter_usage_gives_typed_records() -> None:
    request = botocore.serialize.create_serializer("json").serialize_to_request(
        copy.deepcopy(FULL_INPUTS["BatchMeterUsage"]), _operation("BatchMeterUsage")
    )
    parsed = RequestParser().parse(request["headers"]["X-Amz-Target"], request["body"])

    typed = batch_meter_usage_request(parsed.params)

    assert typed == BatchMeterUsageRequest(
        records=(
            UsageRecord(
                timestamp=1795436000,
                dimension="users",
                quantity=3,
                customer_identifier="cust-alice",
                customer_aws_account_id="444455556666",
                license_arn=ALICE_CA,
                allocations=(
                    UsageAllocation(2, (Tag("team", "a#1 & b!"), Tag("cost-center", "x=1;y<2"))),
                    UsageAllocation(1, None),
                ),
            ),
            UsageRecord(
                timestamp=1795436100,
                dimension="api_calls",
                quantity=None,
                quantity_decimal="9999999999.999999",
                customer_identifier="cust-bob",
                customer_aws_account_id="777788889999",
                license_arn=BOB_CA,
                allocations=(
                    UsageAllocation(None, (Tag("env", "prod/eu@1"),), "9999999999.999999"),
                ),
            ),
        ),
        product_code="prod-legacy",
    )
    assert [type(record.timestamp) for record in typed.records] == [int, int]


@pytest.mark.parametrize("name", OPERATIONS)
def test_botocore_minimal_request_parses(name: str) -> None:
    operation = _operation(name)
    required = operation.input_shape.required_members
    params = {key: value for key, value in FULL_INPUTS[name].items() if key in required}
    request = botocore.serialize.create_serializer("json").serialize_to_request(
        copy.deepcopy(params), operation
    )

    parsed = RequestParser().parse(request["headers"]["X-Amz-Target"], request["body"])

    wire = {key: value for key, value in WIRE_INPUTS[name].items() if key in required}
    assert parsed.params == wire


# --- our serializer → botocore's parser --------------------------------------------------------


def _botocore_parse(wire: serialize.WireResponse, output_shape: Any) -> dict[str, Any]:
    headers = {
        "Content-Type": serialize.CONTENT_TYPE.decode(),
        "x-amzn-RequestId": "00000000-0000-4000-8000-000000001000",
    }
    if wire.error_type is not None:
        headers["x-amzn-ErrorType"] = wire.error_type
    # botocore hands its parsers a case-insensitive HeadersDict, as here.
    response = {"status_code": wire.status, "headers": HeadersDict(headers), "body": wire.body}
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(response, output_shape)
    return parsed


def test_batch_meter_usage_result_parsed_by_botocore() -> None:
    tagged = UsageRecord(
        timestamp=1795436000,
        dimension="users",
        quantity=3,
        customer_identifier="cust-alice",
        allocations=(
            UsageAllocation(2, (Tag("team", "a#1"), Tag("env", "x = y"))),
            UsageAllocation(1, None),
        ),
    )
    fractional = UsageRecord(
        timestamp=1795436100.25,
        dimension="requests",
        quantity=0,
        customer_aws_account_id="444455556666",
        license_arn=ALICE_CA,
    )
    no_quantity = UsageRecord(timestamp=1795436000, dimension="users", customer_identifier="c-1")
    unprocessed = UsageRecord(
        timestamp=1795436100, dimension="api_calls", quantity=9, customer_identifier="cust-bob"
    )
    result = BatchMeterUsageResult(
        results=(
            UsageRecordResult(tagged, RecordStatus.SUCCESS, "00000000-0000-4000-8000-000000000001"),
            UsageRecordResult(fractional, RecordStatus.DUPLICATE_RECORD),
            UsageRecordResult(no_quantity, RecordStatus.CUSTOMER_NOT_SUBSCRIBED),
        ),
        unprocessed=(unprocessed,),
    )
    wire = serialize.success(serialize.batch_meter_usage_result(result))
    output_shape = _operation("BatchMeterUsage").output_shape

    parsed = _botocore_parse(wire, output_shape)

    metadata = parsed.pop("ResponseMetadata")
    assert metadata["HTTPStatusCode"] == 200
    assert metadata["RequestId"] == "00000000-0000-4000-8000-000000001000"
    assert parsed == {
        "Results": [
            {
                "UsageRecord": {
                    "Timestamp": datetime(2026, 11, 23, 12, 13, 20, tzinfo=UTC),
                    "Dimension": "users",
                    "CustomerIdentifier": "cust-alice",
                    "Quantity": 3,
                    "UsageAllocations": [
                        {
                            "AllocatedUsageQuantity": 2,
                            "Tags": [
                                {"Key": "team", "Value": "a#1"},
                                {"Key": "env", "Value": "x = y"},
                            ],
                        },
                        {"AllocatedUsageQuantity": 1},
                    ],
                },
                "Status": "Success",
                "MeteringRecordId": "00000000-0000-4000-8000-000000000001",
            },
            {
                "UsageRecord": {
                    "Timestamp": datetime(2026, 11, 23, 12, 15, 0, 250000, tzinfo=UTC),
                    "Dimension": "requests",
                    "CustomerAWSAccountId": "444455556666",
                    "LicenseArn": ALICE_CA,
                    "Quantity": 0,
                },
                "Status": "DuplicateRecord",
            },
            {
                "UsageRecord": {
                    "Timestamp": datetime(2026, 11, 23, 12, 13, 20, tzinfo=UTC),
                    "Dimension": "users",
                    "CustomerIdentifier": "c-1",
                },
                "Status": "CustomerNotSubscribed",
            },
        ],
        "UnprocessedRecords": [
            {
                "Timestamp": datetime(2026, 11, 23, 12, 15, 0, tzinfo=UTC),
                "Dimension": "api_calls",
                "CustomerIdentifier": "cust-bob",
                "Quantity": 9,
            }
        ],
    }
    # The output also obeys the model's constraints (enum, lengths, patterns).
    validate(compile_shape(output_shape), orjson.loads(wire.body))


def test_empty_batch_meter_usage_result_parsed_by_botocore() -> None:
    wire = serialize.success(serialize.batch_meter_usage_result(BatchMeterUsageResult(())))

    parsed = _botocore_parse(wire, _operation("BatchMeterUsage").output_shape)

    parsed.pop("ResponseMetadata")
    assert parsed == {"Results": [], "UnprocessedRecords": []}


def test_meter_usage_result_parsed_by_botocore() -> None:
    wire = serialize.success(serialize.meter_usage_result(MeterUsageResult(RECORD_ID)))
    output_shape = _operation("MeterUsage").output_shape

    parsed = _botocore_parse(wire, output_shape)

    metadata = parsed.pop("ResponseMetadata")
    assert (metadata["HTTPStatusCode"], metadata["RequestId"]) == (200, REQUEST_ID)
    assert parsed == {"MeteringRecordId": RECORD_ID}
    validate(compile_shape(output_shape), orjson.loads(wire.body))


RESOLVED: dict[str, tuple[ResolveCustomerResult, dict[str, Any]]] = {
    "legacy": (
        ResolveCustomerResult(
            product_code="prod-legacy",
            customer_aws_account_id="444455556666",
            license_arn=ALICE_LEGACY,
            agreement_id=agreement_id_for(ALICE_LEGACY),
            customer_identifier="cust-alice",
        ),
        {
            "CustomerIdentifier": "cust-alice",
            "ProductCode": "prod-legacy",
            "CustomerAWSAccountId": "444455556666",
            "LicenseArn": ALICE_LEGACY,
            "Metadata": {"AgreementId": "agmt-j17tn7wmjtl9wohyyyfxt2p8z"},
        },
    ),
    "concurrent-agreements": (
        ResolveCustomerResult(
            product_code="prod-ca",
            customer_aws_account_id="444455556666",
            license_arn=ALICE_CA,
            agreement_id=agreement_id_for(ALICE_CA),
        ),
        {
            "ProductCode": "prod-ca",
            "CustomerAWSAccountId": "444455556666",
            "LicenseArn": ALICE_CA,
            "Metadata": {"AgreementId": "agmt-0vdyg5k8xmme8a1oi8wdy9qzk"},
        },
    ),
}


@pytest.mark.parametrize("integration", RESOLVED)
def test_resolve_customer_result_parsed_by_botocore(integration: str) -> None:
    result, expected = RESOLVED[integration]
    wire = serialize.success(serialize.resolve_customer_result(result))
    output_shape = _operation("ResolveCustomer").output_shape

    parsed = _botocore_parse(wire, output_shape)

    metadata = parsed.pop("ResponseMetadata")
    assert (metadata["HTTPStatusCode"], metadata["RequestId"]) == (200, REQUEST_ID)
    assert parsed == expected
    validate(compile_shape(output_shape), orjson.loads(wire.body))


SIGNATURE = "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJwcm9kdWN0Q29kZSI6InAifQ.c2ln-_A"


@pytest.mark.parametrize(
    ("rotated_at", "expected"),
    [
        (None, {"Signature": SIGNATURE}),
        (
            1795437000.0,
            {
                "PublicKeyRotationTimestamp": datetime(2026, 11, 23, 12, 30, tzinfo=UTC),
                "Signature": SIGNATURE,
            },
        ),
        (
            1795437000.25,
            {
                "PublicKeyRotationTimestamp": datetime(2026, 11, 23, 12, 30, 0, 250000, tzinfo=UTC),
                "Signature": SIGNATURE,
            },
        ),
    ],
    ids=["current-version", "retired-version", "retired-at-a-fraction"],
)
def test_register_usage_result_parsed_by_botocore(
    rotated_at: float | None, expected: dict[str, Any]
) -> None:
    wire = serialize.success(
        serialize.register_usage_result(RegisterUsageResult(SIGNATURE, rotated_at))
    )
    output_shape = _operation("RegisterUsage").output_shape

    parsed = _botocore_parse(wire, output_shape)

    metadata = parsed.pop("ResponseMetadata")
    assert (metadata["HTTPStatusCode"], metadata["RequestId"]) == (200, REQUEST_ID)
    assert parsed == expected
    stamp = parsed.get("PublicKeyRotationTimestamp")
    assert stamp is None or stamp.utcoffset() == timedelta(0)
    validate(compile_shape(output_shape), orjson.loads(wire.body))


def test_register_usage_rotation_timestamp_is_an_integer_epoch_on_the_wire() -> None:
    wire = serialize.success(
        serialize.register_usage_result(RegisterUsageResult(SIGNATURE, 1795437000.0))
    )

    assert wire.body == (
        b'{"PublicKeyRotationTimestamp":1795437000,"Signature":"' + SIGNATURE.encode() + b'"}'
    )


def _operation_modelling(code: str) -> str:
    for name in OPERATIONS:
        if code in {shape.name for shape in _operation(name).error_shapes}:
            return name
    return "BatchMeterUsage"


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_error_parsed_by_botocore(cls: type[AwsError]) -> None:
    expected_status = NON_400.get(cls.__name__, 400)
    wire = serialize.error(cls("msg"))
    assert wire.status == expected_status
    assert wire.error_type == cls.code == cls.__name__
    assert orjson.loads(wire.body) == {"__type": cls.__name__, "message": "msg"}

    parsed = _botocore_parse(wire, _operation(_operation_modelling(cls.code)).output_shape)

    assert parsed["Error"] == {"Code": cls.code, "Message": "msg"}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == expected_status
    assert parsed["ResponseMetadata"]["RequestId"] == "00000000-0000-4000-8000-000000001000"


def test_error_message_with_quotes_and_unicode_parsed_by_botocore() -> None:
    message = "1 validation error detected: Value 'a\"b\\c ü\n' at 'x' failed"
    wire = serialize.error(errors.ValidationException(message))

    parsed = _botocore_parse(wire, _operation("BatchMeterUsage").output_shape)

    assert parsed["Error"] == {"Code": "ValidationException", "Message": message}


@pytest.mark.parametrize("cls", MODELLED_ERRORS, ids=lambda cls: cls.__name__)
def test_botocore_client_has_modelled_exception(cls: type[AwsError]) -> None:
    client = botocore.session.get_session().create_client(
        "meteringmarketplace",
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSELLER000001",
        aws_secret_access_key="test-seller-secret",
    )
    try:
        assert client.exceptions.from_code(cls.code).__name__ == cls.code
    finally:
        client.close()


# --- errors through a botocore client, per operation -------------------------------------------


class _Body:
    """The raw stream botocore reads an ``AWSResponse`` body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self._body


def _operation_errors() -> list[Any]:
    modelled = {cls.code: cls for cls in MODELLED_ERRORS}
    params = []
    for name, framework in OPERATION_FRAMEWORK_ERRORS.items():
        classes = [modelled[shape.name] for shape in _operation(name).error_shapes]
        for cls in [*classes, *framework]:
            params.append(pytest.param(name, cls, id=f"{name}-{cls.code}"))
    return params


@pytest.mark.parametrize(("name", "cls"), _operation_errors())
def test_operation_error_raised_by_botocore_client(name: str, cls: type[AwsError]) -> None:
    expected_status = NON_400.get(cls.code, 400)
    wire = serialize.error(cls("msg"))
    sent: list[Any] = []

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        headers = {
            "Content-Type": serialize.CONTENT_TYPE.decode(),
            "x-amzn-RequestId": REQUEST_ID,
            "x-amzn-ErrorType": cls.code,
        }
        return AWSResponse(request.url, wire.status, headers, _Body(wire.body))

    client = botocore.session.get_session().create_client(
        "meteringmarketplace",
        region_name="us-east-1",
        endpoint_url="http://marketmeter.test",
        aws_access_key_id="AKIATESTALICE0000001",
        aws_secret_access_key="alice-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register(f"before-send.marketplace-metering.{name}", answer)
    try:
        call = getattr(client, botocore.xform_name(name))
        with pytest.raises(ClientError) as raised:
            call(**copy.deepcopy(FULL_INPUTS[name]))
        expected_class = client.exceptions.from_code(cls.code)
    finally:
        client.close()

    assert len(sent) == 1
    target = sent[0].headers["X-Amz-Target"]
    assert (target.decode() if isinstance(target, bytes) else target) == (
        f"AWSMPMeteringService.{name}"
    )
    assert type(raised.value) is expected_class
    if cls in MODELLED_ERRORS:
        assert expected_class.__name__ == cls.code
    else:
        assert expected_class is ClientError
    response = raised.value.response
    assert response["Error"] == {"Code": cls.code, "Message": "msg"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == expected_status
    assert response["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert raised.value.operation_name == name


# --- the error classes against the model -------------------------------------------------------


def test_modelled_errors_equal_model_error_shapes() -> None:
    model = service_model()
    shapes = {
        shape.name
        for name in model.operation_names
        for shape in model.operation_model(name).error_shapes
    }
    names = [cls.__name__ for cls in MODELLED_ERRORS]
    assert len(names) == len(set(names))
    assert set(names) == shapes


def test_every_error_class_is_modelled_or_framework() -> None:
    def subclasses(cls: type[AwsError]) -> set[type[AwsError]]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    defined = {cls for cls in subclasses(AwsError) if cls.__module__ == errors.__name__}
    assert not set(MODELLED_ERRORS) & set(FRAMEWORK_ERRORS)
    assert defined == set(ALL_ERRORS) | set(ENTITLEMENT_ERRORS) | set(errors.AGREEMENT_ERRORS)


def test_entitlement_errors_equal_the_entitlement_models_error_shapes() -> None:
    model = model_of(ENTITLEMENT)
    shapes = {
        shape.name
        for name in model.operation_names
        for shape in model.operation_model(name).error_shapes
    }
    assert {cls.__name__ for cls in ENTITLEMENT_ERRORS} == shapes
