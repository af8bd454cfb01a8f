"""The Agreement API's term shapes, from botocore's ``marketplace-agreement`` model
(``spec.model_of(AGREEMENT)``): the catalog checks offers' terms against them
(docs/catalog.md, "Offers")."""

from __future__ import annotations

from functools import cache

from marketmeter.servicemodel.spec import AGREEMENT, model_of
from marketmeter.servicemodel.validation import Checker, compile_shape

__all__ = ["term_checker", "term_keys"]


@cache
def term_keys() -> dict[str, str]:
    """Each member of ``AcceptedTerm`` (``usageBasedPricingTerm``, ...) and the term type it
    holds (``UsageBasedPricingTerm``, the value of the term's ``type``)."""
    shape = model_of(AGREEMENT).shape_for("AcceptedTerm")
    return {name: member.name for name, member in shape.members.items()}


@cache
def term_checker(key: str) -> Checker:
    """The checker of one term's shape, by its ``AcceptedTerm`` member name."""
    return compile_shape(model_of(AGREEMENT).shape_for("AcceptedTerm").members[key])
