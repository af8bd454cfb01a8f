"""The service model: botocore's ``meteringmarketplace`` 2016-01-14, loaded once.

This is the single source of truth for operation names, the ``X-Amz-Target`` prefix, shapes,
constraints and error names (docs/wire-protocol.md). Nothing here is retyped by hand.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session

__all__ = ["SERVICE_NAME", "operation_names", "service_model", "service_regions", "target_prefix"]

SERVICE_NAME = "meteringmarketplace"


@cache
def service_model() -> Any:
    """The botocore ``ServiceModel`` of the Metering Service (loaded on first use)."""
    session = botocore.session.get_session()
    return session.get_service_model(SERVICE_NAME)


def target_prefix() -> str:
    """``AWSMPMeteringService``: the part of ``X-Amz-Target`` before the dot."""
    return str(service_model().metadata["targetPrefix"])


@cache
def operation_names() -> tuple[str, ...]:
    """The service's operations, as the model lists them (the one list every part reads:
    the dispatch table, fault rules, quotas, the journal's filter)."""
    return tuple(str(name) for name in service_model().operation_names)


@cache
def service_regions() -> frozenset[str]:
    """The regions AWS serves the Metering Service in: every partition's endpoints of its
    endpoint prefix (``metering.marketplace``) in botocore's ``endpoints.json`` (the 28
    commercial regions of
    https://docs.aws.amazon.com/marketplace/latest/APIReference/metering-regions.html, China,
    GovCloud and the isolated partitions)."""
    prefix = service_model().metadata["endpointPrefix"]
    endpoints = botocore.session.get_session().get_data("endpoints")
    regions: set[str] = set()
    for partition in endpoints["partitions"]:
        service = partition["services"].get(prefix, {})
        regions.update(name for name in service.get("endpoints", {}) if "fips" not in name)
    return frozenset(regions)
