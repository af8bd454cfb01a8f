"""Requests in: ``X-Amz-Target`` → (service, operation); body → validated JSON → typed domain
request.

PascalCase member names are read here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from marketmeter.errors import SerializationException, UnknownOperationException
from marketmeter.metering.types import (
    BatchMeterUsageRequest,
    MeterUsageRequest,
    RegisterUsageRequest,
    ResolveCustomerRequest,
    Tag,
    UsageAllocation,
    UsageRecord,
)
from marketmeter.servicemodel.spec import METERING, model_of, prefix_of
from marketmeter.servicemodel.validation import (
    BeyondFastJson,
    Checker,
    Violations,
    compile_shape,
    validate,
)

__all__ = [
    "ParsedRequest",
    "RequestParser",
    "Route",
    "batch_meter_usage_request",
    "decode_and_validate",
    "decode_json",
    "meter_usage_request",
    "register_usage_request",
    "resolve_customer_request",
    "unknown_operation",
]


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Route:
    """Where an ``X-Amz-Target`` leads: the service (botocore's name), the operation and its
    precompiled input checker."""

    service: str
    operation: str
    checker: Checker


class RequestParser:
    """Knows every operation of the given services' models (by default the Metering Service's)
    and holds each one's precompiled input checker."""

    def __init__(self, services: Iterable[str] = (METERING,)) -> None:
        self._routes: dict[str, Route] = {}
        for service in services:
            model = model_of(service)
            prefix = prefix_of(service)
            for name in model.operation_names:
                shape = model.operation_model(name).input_shape
                checker = compile_shape(shape) if shape is not None else _no_input
                self._routes[f"{prefix}.{name}"] = Route(service, name, checker)

    def route(self, target: str | None) -> Route | None:
        """The service and operation ``X-Amz-Target`` names, if it names one."""
        return self._routes.get(target) if target else None

    def operation(self, target: str | None) -> tuple[str, Checker]:
        """The operation named by ``X-Amz-Target``, or ``UnknownOperationException``."""
        found = self.route(target)
        if found is None:
            raise unknown_operation(target)
        return found.operation, found.checker

    def parse(self, target: str | None, body: bytes) -> ParsedRequest:
        name, checker = self.operation(target)
        return ParsedRequest(name, decode_and_validate(checker, body))


def unknown_operation(target: str | None) -> UnknownOperationException:
    """What AWS answers a target that names no operation."""
    return UnknownOperationException(
        "No operation named by the X-Amz-Target header"
        if not target
        else f"Unknown operation {target}"
    )


def _no_input(value: Any, path: str, out: Violations) -> None:
    """An operation without an input shape takes any JSON object."""


def decode_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. An empty body is ``{}``, as botocore would send."""
    if not body or body.isspace():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise SerializationException(f"The request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise SerializationException("The request body must be a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise SerializationException(f"The request body is not valid JSON: {name} is not a number")


def decode_and_validate(checker: Checker, body: bytes) -> dict[str, Any]:
    """Decode (fast path: orjson) and validate; integers past 64 bits are re-read exactly."""
    params = decode_json(body)
    try:
        validate(checker, params)
    except BeyondFastJson:
        try:
            params = json.loads(body, parse_constant=_reject_constant)
        except ValueError as error:
            raise SerializationException(f"The request body is not valid JSON: {error}") from None
        try:
            validate(checker, params)
        except BeyondFastJson as error:
            # still a float after the exact re-read (e.g. -5.2e+16): a number, not an integer
            raise SerializationException(error.message) from None
    return params


def _allocations(raw: list[dict[str, Any]] | None) -> tuple[UsageAllocation, ...] | None:
    if raw is None:
        return None
    return tuple(
        UsageAllocation(
            quantity=item.get("AllocatedUsageQuantity"),
            quantity_decimal=item.get("AllocatedUsageQuantityAsDecimal"),
            tags=(
                tuple(Tag(tag["Key"], tag["Value"]) for tag in item["Tags"])
                if item.get("Tags") is not None
                else None
            ),
        )
        for item in raw
    )


def batch_meter_usage_request(params: dict[str, Any]) -> BatchMeterUsageRequest:
    """Typed BatchMeterUsage input from validated JSON."""
    records = tuple(
        UsageRecord(
            timestamp=raw["Timestamp"],
            dimension=raw["Dimension"],
            quantity=raw.get("Quantity"),
            quantity_decimal=raw.get("QuantityAsDecimal"),
            customer_identifier=raw.get("CustomerIdentifier"),
            customer_aws_account_id=raw.get("CustomerAWSAccountId"),
            license_arn=raw.get("LicenseArn"),
            allocations=_allocations(raw.get("UsageAllocations")),
        )
        for raw in params["UsageRecords"]
    )
    return BatchMeterUsageRequest(records=records, product_code=params.get("ProductCode"))


def meter_usage_request(params: dict[str, Any]) -> MeterUsageRequest:
    """Typed MeterUsage input from validated JSON."""
    return MeterUsageRequest(
        product_code=params["ProductCode"],
        timestamp=params["Timestamp"],
        dimension=params["UsageDimension"],
        quantity=params.get("UsageQuantity"),
        quantity_decimal=params.get("UsageQuantityAsDecimal"),
        dry_run=bool(params.get("DryRun")),
        allocations=_allocations(params.get("UsageAllocations")),
        client_token=params.get("ClientToken"),
    )


def resolve_customer_request(params: dict[str, Any]) -> ResolveCustomerRequest:
    """Typed ResolveCustomer input from validated JSON."""
    return ResolveCustomerRequest(registration_token=params["RegistrationToken"])


def register_usage_request(params: dict[str, Any]) -> RegisterUsageRequest:
    """Typed RegisterUsage input from validated JSON."""
    return RegisterUsageRequest(
        product_code=params["ProductCode"],
        public_key_version=params["PublicKeyVersion"],
        nonce=params.get("Nonce"),
    )
