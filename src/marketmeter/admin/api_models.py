"""The JSON shapes of the admin API's own routes (health, usage, clock, tokens, keys), as
pydantic models for its OpenAPI document.

The operator builds the answers as plain dicts (``operator.usage``, ``operator.clock``,
``operator.tokens``); these models describe them, and the schemathesis run of the suite
checks that every answer conforms.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "API_SCHEMA_MODELS",
    "ClockAdvance",
    "ClockChange",
    "ClockState",
    "Health",
    "KeyList",
    "MintToken",
    "SigningKeyInfo",
    "TokenInfo",
    "TokenList",
    "UsageRecord",
    "UsageRecords",
    "UsageSummary",
    "UsageSummaryRow",
    "UsageSummaryTotal",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    """The server is up; the catalog version it serves."""

    status: Literal["ok"]
    version: str
    catalogVersion: int


class UsageRecord(BaseModel):
    """One billed record of the ledger."""

    meteringRecordId: str
    productCode: str
    customerAWSAccountId: str
    customerIdentifier: str | None
    licenseArn: str | None
    dimension: str
    quantity: int | float
    timestamp: int | float
    hour: str
    usageAllocations: list[dict[str, Any]] | None
    receivedAt: str
    operation: str
    instance: str | None


class UsageRecords(BaseModel):
    records: list[UsageRecord]


class UsageSummaryRow(BaseModel):
    """The billed quantity of one window and group (keys present when grouped by)."""

    windowStart: str
    windowEnd: str
    productCode: str | None = None
    customerAWSAccountId: str | None = None
    dimension: str
    quantity: int | float
    records: int


class UsageSummaryTotal(BaseModel):
    """The billed quantity of one dimension (of one product when grouped by product)."""

    productCode: str | None = None
    dimension: str
    quantity: int | float
    records: int


class UsageSummary(BaseModel):
    """Billed usage summed per window and group; quantities of different dimensions are
    never added together."""

    window: Literal["hour", "day", "month"]
    groupBy: list[Literal["product", "customer", "dimension"]]
    from_: str | None = Field(alias="from")
    to: str | None
    rows: list[UsageSummaryRow]
    truncated: bool
    totals: list[UsageSummaryTotal]


class ClockState(BaseModel):
    """The service clock: what it reads, and how it moves."""

    now: str
    epoch: float
    mode: Literal["system", "offset", "frozen"]
    offsetSeconds: float


class ClockChange(_Body):
    """Set the clock to ``time`` (ISO 8601 or epoch seconds; frozen unless ``frozen`` is
    false), run it at wall time plus ``offsetSeconds``, or stop it (``{"frozen": true}``)."""

    time: str | float | None = None
    frozen: bool | None = None
    offsetSeconds: float | None = None


class ClockAdvance(_Body):
    """Move the clock by ``seconds`` (negative moves it back)."""

    seconds: float


class TokenInfo(BaseModel):
    """A SaaS registration token, for ResolveCustomer."""

    token: str
    productCode: str
    customerAWSAccountId: str
    licenseArn: str
    offerType: str | None
    issuedAt: str
    expiresAt: str
    expired: bool


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class MintToken(_Body):
    """Mint a registration token for a buyer's agreement for a product."""

    productCode: str = Field(min_length=1)
    buyerAccountId: str = Field(min_length=1)
    licenseArn: str | None = None
    freeTrial: bool | None = None


class SigningKeyInfo(BaseModel):
    """A RegisterUsage public key version."""

    version: int
    createdAt: str
    retiredAt: str | None
    publicKey: str


class KeyList(BaseModel):
    keys: list[SigningKeyInfo]


API_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    ClockAdvance,
    ClockChange,
    ClockState,
    Health,
    KeyList,
    MintToken,
    SigningKeyInfo,
    TokenInfo,
    TokenList,
    UsageRecord,
    UsageRecords,
    UsageSummary,
    UsageSummaryRow,
    UsageSummaryTotal,
)
