"""Every error marketmeter can answer an AWS client with, as a typed exception.

The rules and the protocol layer raise these; only ``protocol.serialize`` turns them into bytes
(``{"__type", "message"}`` body, ``x-amzn-ErrorType`` header, HTTP status).

Exception tree::

    AwsError                              code, http_status, fault ("client" | "server"),
    │                                     throttling, retryable (what an SDK does with it)
    ├── modelled errors                   the error shapes of the botocore service model
    │   ├── InternalServiceErrorException     500, server fault
    │   ├── IdempotencyConflictException      409
    │   └── (every other *Exception shape)    400 (InvalidParameterException: the
    │                                         Entitlement Service's, ENTITLEMENT_ERRORS)
    └── framework errors                  sent by AWS's JSON 1.1 front end, not in the model
        ├── ValidationException               400
        ├── SerializationException            400
        ├── UnknownOperationException         400
        ├── RequestEntityTooLargeException    413
        ├── RequestHeaderFieldsTooLargeException  431 (connection limits; marketmeter's choice)
        ├── RequestTimeoutException           408 (a request not received in time; retried)
        ├── ServiceUnavailableException       503 (connection limit reached; retried)
        ├── MissingAuthenticationTokenException, UnrecognizedClientException,
        │   InvalidSignatureException, IncompleteSignatureException,
        │   AccessDeniedException             400 (strict SigV4 auth)
        └── DryRunOperation                   400 (MeterUsage DryRun, only with the setting
                                              ``--dry-run-answer error``; AWS answers 200)

A test compares the modelled classes with the error shapes of the service model, so the two can
never drift apart.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

__all__ = [
    "AGREEMENT_ERRORS",
    "ENTITLEMENT_ERRORS",
    "MODELLED_ERRORS",
    "AccessDeniedException",
    "AgreementAccessDeniedException",
    "AgreementThrottlingException",
    "AgreementValidationException",
    "AwsError",
    "CustomerNotEntitledException",
    "DisabledApiException",
    "DryRunOperation",
    "DuplicateRequestException",
    "ExpiredTokenException",
    "IdempotencyConflictException",
    "IncompleteSignatureException",
    "InternalServerException",
    "InternalServiceErrorException",
    "InvalidCustomerIdentifierException",
    "InvalidEndpointRegionException",
    "InvalidLicenseException",
    "InvalidParameterException",
    "InvalidProductCodeException",
    "InvalidPublicKeyVersionException",
    "InvalidRegionException",
    "InvalidSignatureException",
    "InvalidTagException",
    "InvalidTokenException",
    "InvalidUsageAllocationsException",
    "InvalidUsageDimensionException",
    "MissingAuthenticationTokenException",
    "PlatformNotSupportedException",
    "RequestEntityTooLargeException",
    "RequestHeaderFieldsTooLargeException",
    "RequestTimeoutException",
    "ResourceNotFoundException",
    "SerializationException",
    "ServiceUnavailableException",
    "ThrottlingException",
    "TimestampOutOfBoundsException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationException",
]

Fault = Literal["client", "server"]


class AwsError(Exception):
    """An error answered to the client. ``code`` is the wire ``__type``."""

    code: ClassVar[str] = "AwsError"
    http_status: ClassVar[int] = 400
    fault: ClassVar[Fault] = "client"
    # The traits AWS SDKs act on (smithy's retry classification; botocore's standard mode):
    # ``throttling`` errors are retried with backoff, and count against the retry quota as
    # such; ``retryable`` ones (throttling, transient codes, 500/502/503/504) are retried.
    # Whether a call is safe to retry is marketmeter's promise for every error: a retry of a
    # call that was answered with a ``retryable`` error gets the first call's ids, never a
    # second record (docs/reliability.md).
    throttling: ClassVar[bool] = False
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def members(self) -> dict[str, Any]:
        """The error shape's members beyond ``message`` (the Agreement API's ``reason``,
        ``resourceId``, ...), as the wire writes them."""
        return {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = str(cls.__dict__.get("code", cls.__name__))
        if cls.throttling or cls.http_status in _TRANSIENT_STATUSES:
            cls.retryable = True


# HTTP statuses every AWS SDK retries whatever the error (smithy: transient server errors).
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


# --- modelled errors (botocore meteringmarketplace 2016-01-14) -------------------------------


class CustomerNotEntitledException(AwsError):
    """The buyer has no active agreement for the product (MeterUsage, RegisterUsage)."""


class DisabledApiException(AwsError):
    """The API is disabled in the Region."""


class DuplicateRequestException(AwsError):
    """MeterUsage: the hour already has a record with a different quantity."""


class ExpiredTokenException(AwsError):
    """ResolveCustomer: the registration token has expired."""


class IdempotencyConflictException(AwsError):
    """MeterUsage: the same ClientToken with different parameters."""

    http_status = 409


class InternalServiceErrorException(AwsError):
    """Something failed on our side; the client should retry."""

    http_status = 500
    fault = "server"


class InvalidCustomerIdentifierException(AwsError):
    """Modelled by AWS; marketmeter answers unknown customers with CustomerNotSubscribed."""


class InvalidEndpointRegionException(AwsError):
    """MeterUsage called in a Region that does not match the instance."""


class InvalidLicenseException(AwsError):
    """A LicenseArn that is malformed, foreign, or outside its activation period."""


class InvalidProductCodeException(AwsError):
    """Unknown product code, or one that belongs to another seller."""


class InvalidPublicKeyVersionException(AwsError):
    """RegisterUsage: unknown public key version."""


class InvalidRegionException(AwsError):
    """RegisterUsage called in a Region that does not match the task."""


class InvalidTagException(AwsError):
    """A tag outside the allowed charset, or more than 5 distinct tag keys in a record."""


class InvalidTokenException(AwsError):
    """ResolveCustomer: unknown, malformed or foreign registration token."""


class InvalidUsageAllocationsException(AwsError):
    """Allocations that do not add up, repeat a tag set, or hold two untagged buckets."""


class InvalidUsageDimensionException(AwsError):
    """A dimension the product does not have (names are case-sensitive)."""


class PlatformNotSupportedException(AwsError):
    """RegisterUsage from a platform that is not ECS or EKS."""


class ThrottlingException(AwsError):
    """Too many calls. Status 400: botocore retries it by its code."""

    throttling = True


class TimestampOutOfBoundsException(AwsError):
    """A usage timestamp outside the accepted window; the whole batch is refused."""


# --- modelled errors of the Entitlement Service (botocore marketplace-entitlement 2017-01-11) ---


class InvalidParameterException(AwsError):
    """GetEntitlements: a filter combination, NextToken or product the call may not use."""


# The error shapes of GetEntitlements (ThrottlingException and InternalServiceErrorException
# are the Metering Service's own, same names).
ENTITLEMENT_ERRORS: tuple[type[AwsError], ...] = (
    InternalServiceErrorException,
    InvalidParameterException,
    ThrottlingException,
)


MODELLED_ERRORS: tuple[type[AwsError], ...] = (
    CustomerNotEntitledException,
    DisabledApiException,
    DuplicateRequestException,
    ExpiredTokenException,
    IdempotencyConflictException,
    InternalServiceErrorException,
    InvalidCustomerIdentifierException,
    InvalidEndpointRegionException,
    InvalidLicenseException,
    InvalidProductCodeException,
    InvalidPublicKeyVersionException,
    InvalidRegionException,
    InvalidTagException,
    InvalidTokenException,
    InvalidUsageAllocationsException,
    InvalidUsageDimensionException,
    PlatformNotSupportedException,
    ThrottlingException,
    TimestampOutOfBoundsException,
)


# --- framework errors (AWS JSON 1.1 front end; docs/wire-protocol.md) -----------------------------


class ValidationException(AwsError):
    """A constraint of the model is broken; message in AWS's counted, joined style."""

    @classmethod
    def from_violations(cls, violations: list[str]) -> ValidationException:
        count = len(violations)
        noun = "error" if count == 1 else "errors"
        return cls(f"{count} validation {noun} detected: " + "; ".join(violations))


class SerializationException(AwsError):
    """The body is not JSON, or a member has the wrong JSON type."""


class UnknownOperationException(AwsError):
    """Missing or unknown X-Amz-Target."""


class RequestEntityTooLargeException(AwsError):
    """A body of 1 MB or more."""

    http_status = 413


class RequestHeaderFieldsTooLargeException(AwsError):
    """The request line and headers are over the size or count limit (``--max-header-bytes``,
    ``--max-headers``). Sent before the request reaches the service; the connection closes."""

    http_status = 431


class RequestTimeoutException(AwsError):
    """The request was not received in time (``--header-timeout``, ``--request-timeout``).
    botocore and the JS SDK retry this code; nothing of the request was processed."""

    http_status = 408
    retryable = True  # a transient error by its code (botocore, the AWS SDKs)


class ServiceUnavailableException(AwsError):
    """Every connection the server allows (``--max-connections``) is open. SDKs retry 503."""

    http_status = 503
    fault = "server"


class MissingAuthenticationTokenException(AwsError):
    """Strict auth: the request carries no SigV4 signature."""


class UnrecognizedClientException(AwsError):
    """Strict auth: unknown access key."""


class InvalidSignatureException(AwsError):
    """Strict auth: signature mismatch or expired date."""


class IncompleteSignatureException(AwsError):
    """Strict auth: malformed Authorization header."""


class AccessDeniedException(AwsError):
    """Credentials of the wrong kind (seller vs buyer) for the operation."""


class DryRunOperation(AwsError):
    """MeterUsage with DryRun: the call would have succeeded (``--dry-run-answer error`` only;
    by default such a dry run answers 200 ``{"MeteringRecordId": "DryRunOperation"}``)."""


# --- the Agreement API's modelled errors (botocore marketplace-agreement 2020-03-01) ----------
# Statuses and members as the model gives them (docs/agreement-api.md); the class names that
# the Metering Service's errors already use carry an ``Agreement`` prefix, the wire code not.


class AgreementValidationException(AwsError):
    """A request the Agreement API refuses: ``reason`` one of the model's
    ``ValidationExceptionReason`` values."""

    code = "ValidationException"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason

    def members(self) -> dict[str, Any]:
        return {} if self.reason is None else {"reason": self.reason}


class AgreementAccessDeniedException(AwsError):
    """The caller may not read this agreement (another seller's, or a buyer's key)."""

    code = "AccessDeniedException"
    http_status = 403

    def __init__(self, message: str, reason: str = "INVALID_ACCESS") -> None:
        super().__init__(message)
        self.reason = reason

    def members(self) -> dict[str, Any]:
        return {"reason": self.reason}


class ResourceNotFoundException(AwsError):
    """No agreement (or other resource) with this id."""

    http_status = 404

    def __init__(self, message: str, resource_id: str, resource_type: str = "Agreement") -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_type = resource_type

    def members(self) -> dict[str, Any]:
        return {"resourceId": self.resource_id, "resourceType": self.resource_type}


class AgreementThrottlingException(AwsError):
    """Too many Agreement API calls (the model's status, 429)."""

    code = "ThrottlingException"
    http_status = 429
    throttling = True


class InternalServerException(AwsError):
    """The Agreement API's server fault (500)."""

    http_status = 500
    fault = "server"


AGREEMENT_ERRORS: tuple[type[AwsError], ...] = (
    AgreementAccessDeniedException,
    AgreementThrottlingException,
    AgreementValidationException,
    InternalServerException,
    ResourceNotFoundException,
)
