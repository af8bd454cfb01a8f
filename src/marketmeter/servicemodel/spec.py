"""The service models: botocore's models of the services marketmeter serves, each loaded once.

This is the single source of truth for operation names, the ``X-Amz-Target`` prefixes, the
JSON protocol versions, shapes, constraints, error names and the regions each service is offered
in (docs/wire-protocol.md). Nothing here is retyped by hand.

Three services share one endpoint, told apart by ``X-Amz-Target``
(docs/wire-protocol.md, "One endpoint, three services"):

- ``meteringmarketplace`` 2016-01-14 (AWS JSON 1.1, ``AWSMPMeteringService``);
- ``marketplace-entitlement`` 2017-01-11 (AWS JSON 1.1, ``AWSMPEntitlementService``);
- ``marketplace-agreement`` 2020-03-01 (AWS JSON 1.0, ``AWSMPCommerceService_v20200301``).

The functions without a service argument (``service_model``, ``target_prefix``,
``operation_names``, ``service_regions``) answer for the Metering Service.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import botocore.loaders
import botocore.model

__all__ = [
    "AGREEMENT",
    "ENTITLEMENT",
    "METERING",
    "SERVED",
    "SERVICE_NAME",
    "json_version_of",
    "model_of",
    "operation_names",
    "operations_of",
    "prefix_of",
    "regions_of",
    "served_operation_names",
    "service_model",
    "service_names",
    "service_regions",
    "target_prefix",
]

METERING = "meteringmarketplace"
ENTITLEMENT = "marketplace-entitlement"
AGREEMENT = "marketplace-agreement"
# Every service the endpoint answers, by botocore's name.
SERVED: tuple[str, ...] = (METERING, ENTITLEMENT, AGREEMENT)
SERVICE_NAME = METERING


@cache
def _loader() -> Any:
    """botocore's data loader, searching where a botocore session's would (its models,
    ``~/.aws/models``, ``AWS_DATA_PATH``), without importing the session (clients, waiters,
    their documentation: a tenth of a second at every start of a command that checks a
    catalog)."""
    return botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))


@cache
def model_of(service: str) -> Any:
    """The botocore ``ServiceModel`` of ``service`` (loaded on first use), as a botocore
    session's ``get_service_model`` builds it."""
    description = _loader().load_service_model(service, "service-2")
    return botocore.model.ServiceModel(description, service_name=service)


def prefix_of(service: str) -> str:
    """The part of ``X-Amz-Target`` before the dot (``AWSMPEntitlementService``)."""
    return str(model_of(service).metadata["targetPrefix"])


def json_version_of(service: str) -> str:
    """``1.0`` or ``1.1``: the AWS JSON protocol version (the content type's suffix)."""
    return str(model_of(service).metadata["jsonVersion"])


@cache
def operations_of(service: str) -> tuple[str, ...]:
    """The operations of ``service``, as its model lists them."""
    return tuple(str(name) for name in model_of(service).operation_names)


@cache
def regions_of(service: str) -> frozenset[str]:
    """The regions AWS offers ``service`` in: every partition's endpoints of its endpoint
    prefix in botocore's ``endpoints.json`` (FIPS host names left out). The file is read by a
    loader of its own, dropped after: the shared one would keep all of it (7 MiB in every
    process of a server) for these few names."""
    prefix = model_of(service).metadata["endpointPrefix"]
    endpoints = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH")).load_data(
        "endpoints"
    )
    regions: set[str] = set()
    for partition in endpoints["partitions"]:
        entry = partition["services"].get(prefix, {})
        regions.update(name for name in entry.get("endpoints", {}) if "fips" not in name)
    return frozenset(regions)


@cache
def service_names(service: str) -> frozenset[str]:
    """The names a client may give ``service`` by: botocore's name, the endpoint prefix and
    the service id in the CLI's spelling (``marketplace-entitlement-service``)."""
    metadata = model_of(service).metadata
    return frozenset(
        {
            service,
            str(metadata["endpointPrefix"]),
            str(metadata["serviceId"]).lower().replace(" ", "-"),
        }
    )


@cache
def served_operation_names() -> tuple[str, ...]:
    """Every operation of every served service (fault rules, the journal's filter)."""
    names: list[str] = []
    for service in SERVED:
        names.extend(name for name in operations_of(service) if name not in names)
    return tuple(names)


def service_model() -> Any:
    """The botocore ``ServiceModel`` of the Metering Service (loaded on first use)."""
    return model_of(METERING)


def target_prefix() -> str:
    """``AWSMPMeteringService``: the part of ``X-Amz-Target`` before the dot."""
    return prefix_of(METERING)


def operation_names() -> tuple[str, ...]:
    """The Metering Service's operations, as the model lists them (its dispatch table and
    quotas read this list)."""
    return operations_of(METERING)


def service_regions() -> frozenset[str]:
    """The regions AWS serves the Metering Service in: every partition's endpoints of its
    endpoint prefix (``metering.marketplace``) in botocore's ``endpoints.json`` (the 28
    commercial regions of
    https://docs.aws.amazon.com/marketplace/latest/APIReference/metering-regions.html, China,
    GovCloud and the isolated partitions)."""
    return regions_of(METERING)
