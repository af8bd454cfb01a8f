"""Typed domain values of the metering rules: requests, results, ledger entries, callers.

Plain frozen dataclasses with snake_case names. They import nothing of ours; the protocol
layer builds them from the wire and turns results back into wire JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

__all__ = [
    "BatchMeterUsageRequest",
    "BatchMeterUsageResult",
    "Caller",
    "ContainerRegistration",
    "LedgerEntry",
    "LedgerOutcome",
    "MeterUsageRequest",
    "MeterUsageResult",
    "RecordStatus",
    "RegisterUsageRequest",
    "RegisterUsageResult",
    "RegistrationToken",
    "RequestClaim",
    "RequestClaimOutcome",
    "ResolveCustomerRequest",
    "ResolveCustomerResult",
    "SigningKey",
    "Tag",
    "UsageAllocation",
    "UsageRecord",
    "UsageRecordResult",
]


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class UsageAllocation:
    """A bucket of a record's quantity: ``quantity`` (integer) or ``quantity_decimal`` (the
    decimal string as received), exactly one of them."""

    quantity: int | None
    tags: tuple[Tag, ...] | None
    quantity_decimal: str | None = None

    @property
    def amount(self) -> Decimal:
        if self.quantity_decimal is not None:
            return Decimal(self.quantity_decimal)
        return Decimal(self.quantity or 0)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One record of a BatchMeterUsage call, as the client sent it.

    ``timestamp`` is epoch seconds exactly as received (int or float) so that it can be echoed
    back unchanged; ``quantity`` is ``None`` when the client left it out (it then counts as 0);
    ``quantity_decimal`` is the fractional form (``QuantityAsDecimal``), as received.
    """

    timestamp: int | float
    dimension: str
    quantity: int | None = None
    customer_identifier: str | None = None
    customer_aws_account_id: str | None = None
    license_arn: str | None = None
    allocations: tuple[UsageAllocation, ...] | None = None
    quantity_decimal: str | None = None

    @property
    def billed_quantity(self) -> Decimal:
        """The quantity by value: 17, 17.0 and "17.00" are one quantity."""
        if self.quantity_decimal is not None:
            return Decimal(self.quantity_decimal)
        return Decimal(0 if self.quantity is None else self.quantity)


@dataclass(frozen=True, slots=True)
class BatchMeterUsageRequest:
    records: tuple[UsageRecord, ...]
    product_code: str | None = None


class RecordStatus(StrEnum):
    SUCCESS = "Success"
    CUSTOMER_NOT_SUBSCRIBED = "CustomerNotSubscribed"
    DUPLICATE_RECORD = "DuplicateRecord"


@dataclass(frozen=True, slots=True)
class UsageRecordResult:
    record: UsageRecord
    status: RecordStatus
    metering_record_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchMeterUsageResult:
    results: tuple[UsageRecordResult, ...]
    unprocessed: tuple[UsageRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as authentication established it.

    In open auth every caller is ``anonymous``: no ownership rule applies. Strict SigV4 auth
    maps the access key to a seller or a buyer account.
    """

    kind: Literal["anonymous", "seller", "buyer"]
    account_id: str | None = None
    access_key_id: str | None = None
    session_token: str | None = None  # X-Amz-Security-Token, when the credentials had one
    region: str | None = None  # the region of the SigV4 credential scope, when signed

    @classmethod
    def anonymous(
        cls,
        access_key_id: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
    ) -> Caller:
        return cls("anonymous", None, access_key_id, session_token, region)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A record the rules decided to bill, with its deduplication key.

    The key is (``hour``, ``scope``, ``customer_account``, ``dimension``): ``scope`` is
    ``product:<code>`` for records keyed by product and ``license:<arn>`` for records keyed by
    LicenseArn, so that the two keys never collide (docs/batch-meter-usage.md, "Deduplication key").
    ``quantity_micros`` is the quantity in micro-units (exact, compared by value).
    ``metering_record_id`` is the id to use if the key is new.
    """

    hour: int
    scope: str
    customer_account: str
    dimension: str
    quantity_micros: int
    metering_record_id: str
    product_code: str
    record: UsageRecord
    received_at: float
    operation: str = "BatchMeterUsage"
    instance: str | None = None  # MeterUsage: the calling instance, task or pod


@dataclass(frozen=True, slots=True)
class LedgerOutcome:
    """What the ledger holds for an entry's key after the insert attempt."""

    metering_record_id: str
    quantity_micros: int
    inserted: bool


@dataclass(frozen=True, slots=True)
class MeterUsageRequest:
    """One MeterUsage call. ``timestamp`` is epoch seconds as received; ``quantity`` is
    ``None`` when left out (it then counts as 0), ``quantity_decimal`` the fractional form."""

    product_code: str
    timestamp: int | float
    dimension: str
    quantity: int | None = None
    quantity_decimal: str | None = None
    dry_run: bool = False
    allocations: tuple[UsageAllocation, ...] | None = None
    client_token: str | None = None

    @property
    def billed_quantity(self) -> Decimal:
        if self.quantity_decimal is not None:
            return Decimal(self.quantity_decimal)
        return Decimal(0 if self.quantity is None else self.quantity)


@dataclass(frozen=True, slots=True)
class MeterUsageResult:
    metering_record_id: str


@dataclass(frozen=True, slots=True)
class RequestClaim:
    """A per-request MeterUsage's idempotency claim: one ``client_token`` per buyer account,
    bound to the ``fingerprint`` of the parameters it was first used with."""

    customer_account: str
    client_token: str
    fingerprint: str
    metering_record_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class RequestClaimOutcome:
    """What the ledger holds for a claim's token after the attempt."""

    metering_record_id: str
    fingerprint: str
    inserted: bool


@dataclass(frozen=True, slots=True)
class ResolveCustomerRequest:
    registration_token: str


@dataclass(frozen=True, slots=True)
class ResolveCustomerResult:
    product_code: str
    customer_aws_account_id: str
    license_arn: str
    agreement_id: str
    customer_identifier: str | None = None  # legacy integrations only


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    """A SaaS registration token (docs/saas-registration.md): opaque ``value``, bound to one
    agreement.

    ``offer_type`` is ``"free-trial"`` for trials (sent along in the form POST), else ``None``.
    ``issued_at`` is epoch seconds on the service clock; expiry is the service's setting.
    """

    value: str
    product_code: str
    buyer_account_id: str
    license_arn: str
    issued_at: float
    offer_type: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterUsageRequest:
    product_code: str
    public_key_version: int
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterUsageResult:
    signature: str
    public_key_rotation_timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One RSA key pair of RegisterUsage signatures, by public key version (PEM texts)."""

    version: int
    private_key_pem: str
    public_key_pem: str
    created_at: float
    retired_at: float | None = None


@dataclass(frozen=True, slots=True)
class ContainerRegistration:
    """A task or pod that registered (RegisterUsage) while its buyer was entitled."""

    product_code: str
    buyer_account_id: str
    task: str
    registered_at: float
