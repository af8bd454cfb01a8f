"""BatchMeterUsage inputs in wire form (PascalCase), shared by the boto3, CLI and JS SDK tests."""

from __future__ import annotations

from typing import Any


def record(
    timestamp: int,
    customer: str = "cust-alice",
    dimension: str = "users",
    quantity: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """One usage record keyed by CustomerIdentifier; ``extra`` adds or overrides members."""
    return {
        "Timestamp": timestamp,
        "CustomerIdentifier": customer,
        "Dimension": dimension,
        "Quantity": quantity,
        **extra,
    }


def batch(*records: dict[str, Any], product: str = "prod-legacy") -> dict[str, Any]:
    """A BatchMeterUsage request body."""
    return {"ProductCode": product, "UsageRecords": list(records)}
