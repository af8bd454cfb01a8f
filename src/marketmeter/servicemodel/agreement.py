"""The Agreement API's model: botocore's ``marketplace-agreement`` 2020-03-01, loaded once.

The single source of the Agreement API's operation names, target prefix, shapes, constraints
and error statuses (docs/agreement-api.md), as ``spec.py`` is for the Metering Service; the
catalog checks offers' terms against its ``AcceptedTerm`` shapes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session

from marketmeter.servicemodel.validation import Checker, compile_shape

__all__ = [
    "AGREEMENT_SERVICE_NAME",
    "agreement_model",
    "agreement_operation_names",
    "agreement_target_prefix",
    "term_checker",
    "term_keys",
]

AGREEMENT_SERVICE_NAME = "marketplace-agreement"


@cache
def agreement_model() -> Any:
    """The botocore ``ServiceModel`` of the Agreement API (loaded on first use)."""
    return botocore.session.get_session().get_service_model(AGREEMENT_SERVICE_NAME)


def agreement_target_prefix() -> str:
    """``AWSMPCommerceService_v20200301``: the part of ``X-Amz-Target`` before the dot."""
    return str(agreement_model().metadata["targetPrefix"])


@cache
def agreement_operation_names() -> tuple[str, ...]:
    return tuple(str(name) for name in agreement_model().operation_names)


@cache
def term_keys() -> dict[str, str]:
    """Each member of ``AcceptedTerm`` (``usageBasedPricingTerm``, ...) and the term type it
    holds (``UsageBasedPricingTerm``, the value of the term's ``type``)."""
    shape = agreement_model().shape_for("AcceptedTerm")
    return {name: member.name for name, member in shape.members.items()}


@cache
def term_checker(key: str) -> Checker:
    """The checker of one term's shape, by its ``AcceptedTerm`` member name."""
    return compile_shape(agreement_model().shape_for("AcceptedTerm").members[key])
