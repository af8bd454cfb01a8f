"""GetEntitlements' typed request and result: frozen, snake_case, wire names left at the
edge (``protocol.parse`` and ``protocol.serialize``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from marketmeter.catalog.model import EntitlementValue

__all__ = [
    "EntitlementFilter",
    "EntitlementRecord",
    "GetEntitlementsRequest",
    "GetEntitlementsResult",
]


class EntitlementFilter(StrEnum):
    """The model's ``GetEntitlementFilterName``."""

    CUSTOMER_IDENTIFIER = "CUSTOMER_IDENTIFIER"
    DIMENSION = "DIMENSION"
    CUSTOMER_AWS_ACCOUNT_ID = "CUSTOMER_AWS_ACCOUNT_ID"
    LICENSE_ARN = "LICENSE_ARN"


@dataclass(frozen=True, slots=True)
class GetEntitlementsRequest:
    product_code: str
    filters: Mapping[EntitlementFilter, tuple[str, ...]] = field(default_factory=dict)
    next_token: str | None = None
    max_results: int | None = None


@dataclass(frozen=True, slots=True)
class EntitlementRecord:
    """One entitlement: one dimension of one agreement (so one buyer and one LicenseArn)."""

    product_code: str
    dimension: str
    customer_aws_account_id: str
    license_arn: str
    value: EntitlementValue
    customer_identifier: str | None = None  # legacy-integration products only
    expiration: float | None = None  # epoch seconds; None: no end

    @property
    def order_key(self) -> tuple[str, str, str]:
        """The stable order of the answer (and the position a NextToken holds)."""
        return (self.customer_aws_account_id, self.license_arn, self.dimension)


@dataclass(frozen=True, slots=True)
class GetEntitlementsResult:
    entitlements: tuple[EntitlementRecord, ...]
    next_token: str | None = None
