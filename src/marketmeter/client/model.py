"""The metering client's vocabulary: who is billed, quantities, allocations, record states.

Every type here is plain data (frozen dataclasses), so the spool, the sender, the status API
and the CLI share one meaning of a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

__all__ = [
    "Allocation",
    "Customer",
    "Mode",
    "Quantity",
    "RecordState",
    "SpoolRecord",
    "Status",
    "StatusRow",
    "normalize_quantity",
    "to_epoch",
]

Quantity = int | Decimal

# BatchMeterUsage's Quantity and MeterUsage's UsageQuantity are Java ints; decimals have at
# most 6 places (botocore's model, QuantityAsDecimal).
MAX_INTEGER_QUANTITY = 2_147_483_647
DECIMAL_PLACES = 6


class Mode(StrEnum):
    """How records are sent: SaaS products use BatchMeterUsage (one record per customer x
    dimension x hour); AMI and container products use MeterUsage from the instance or task
    (one record per dimension x hour, the instance being the credentials' session)."""

    BATCH = "batch"
    METER_USAGE = "meter_usage"


class RecordState(StrEnum):
    """Where an aggregated record stands.

    - ``pending``: to be sent (again); ``attempts`` says whether it ever left the machine.
    - ``sent``: AWS answered ``Success``; ``metering_record_id`` is its id. Billed.
    - ``duplicate``: AWS answered ``DuplicateRecord`` (BatchMeterUsage) or
      ``DuplicateRequestException`` (MeterUsage): the hour is billed with another quantity,
      this one is not. Kept, reported.
    - ``late``: usage recorded for a customer x dimension x hour whose record was already sent;
      AWS would refuse it as a duplicate, so it is kept and reported, never sent.
    - ``failed``: refused for this record (``CustomerNotSubscribed``, an invalid dimension,
      license, tag or allocation...); ``error_code`` says why. Not billed.
    - ``expired``: the 6-hour window closed (or was about to) before it was billed.
    """

    PENDING = "pending"
    SENT = "sent"
    DUPLICATE = "duplicate"
    LATE = "late"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Customer:
    """The buyer a record bills: a ``CustomerIdentifier`` (from ResolveCustomer), or a
    ``CustomerAWSAccountId`` (concurrent agreements), with an optional ``LicenseArn``."""

    identifier: str | None = None
    account_id: str | None = None
    license_arn: str | None = None

    def __post_init__(self) -> None:
        if (self.identifier is None) == (self.account_id is None):
            raise ValueError("a customer has exactly one of identifier and account_id")
        for name in ("identifier", "account_id", "license_arn"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"customer {name} must be a non-empty string")

    @property
    def label(self) -> str:
        """The identifier, or the account id: how status and the CLI name the customer."""
        return self.identifier or self.account_id or ""


@dataclass(frozen=True)
class Allocation:
    """Part of a record's quantity, attributed to tags (AWS's ``UsageAllocations``)."""

    quantity: Quantity
    tags: Mapping[str, str] = field(default_factory=dict)


def normalize_quantity(value: object) -> tuple[Decimal, bool]:
    """``(quantity, is_decimal)`` for an ``int`` or ``Decimal`` quantity; ``ValueError`` for
    anything else (floats are refused: they cannot say 0.1 exactly), negatives, or more than
    6 decimal places."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"a quantity is an int or a Decimal, not {type(value).__name__}")
    try:
        quantity = Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - Decimal(int) never fails
        raise ValueError(f"bad quantity {value!r}") from error
    if not quantity.is_finite() or quantity < 0:
        raise ValueError(f"a quantity is finite and not negative, not {value}")
    if quantity != quantity.quantize(Decimal(1).scaleb(-DECIMAL_PLACES)):
        raise ValueError(f"a quantity has at most {DECIMAL_PLACES} decimal places: {value}")
    return quantity, isinstance(value, Decimal)


def to_epoch(at: datetime) -> float:
    """Epoch seconds of an aware datetime (naive ones are refused: usage hours are UTC)."""
    if at.tzinfo is None:
        raise ValueError("usage times are timezone-aware datetimes")
    return at.timestamp()


def hour_of(epoch: float) -> int:
    """The UTC hour (epoch seconds of its start) ``epoch`` falls in."""
    return int(epoch // 3600 * 3600)


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class SpoolRecord:
    """One aggregated record of the spool: what is (or was) sent for a key and its outcome."""

    id: int
    mode: Mode
    product_code: str | None
    customer: Customer | None  # None in MeterUsage mode
    dimension: str
    hour: datetime
    timestamp: datetime  # the Timestamp sent, fixed once the record is made
    quantity: Decimal
    is_decimal: bool  # sent as QuantityAsDecimal (some event was recorded as a Decimal)
    allocations: tuple[Allocation, ...]
    state: RecordState
    attempts: int
    metering_record_id: str | None
    error_code: str | None
    error_message: str | None
    usage_events: int  # how many record() calls it adds up


@dataclass(frozen=True)
class StatusRow:
    """Records and units of one customer x dimension in one state."""

    customer: str
    dimension: str
    state: RecordState
    records: int
    quantity: Decimal


@dataclass(frozen=True)
class Status:
    """The spool at a glance: ``unaggregated`` usage events (their hour is still open),
    records per state, ``at_risk`` (pending, within the alarm margin of the window's end),
    and per customer x dimension rows."""

    unaggregated: int
    counts: Mapping[RecordState, int]
    at_risk: int
    rows: tuple[StatusRow, ...]

    def count(self, state: RecordState | str) -> int:
        return self.counts.get(RecordState(state), 0)
