"""An offer's terms as the catalog file writes them, checked against the Agreement API's model.

A term is one mapping naming its type by the ``AcceptedTerm`` member that holds it, e.g.::

    - usageBasedPricingTerm:
        currencyCode: USD
        rateCards: [{rateCard: [{dimensionKey: api_calls, price: "0.001"}]}]

Its members are the model's (botocore ``marketplace-agreement``), checked with the model's own
constraints; ``type`` and ``id`` are derived (``catalog.model.term_id_for``), never written.
A usage-based rate card prices only the product's dimensions. docs/catalog.md, "Offers".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from marketmeter.catalog.model import OfferTerm
from marketmeter.errors import SerializationException
from marketmeter.servicemodel.agreement import term_checker, term_keys
from marketmeter.servicemodel.validation import Violations

__all__ = ["check_offer_terms"]


def check_offer_terms(
    raw: Sequence[dict[str, Any]], dimensions: Sequence[str], where: str, problems: list[str]
) -> tuple[OfferTerm, ...]:
    """The offer's terms, each checked; every problem is added to ``problems``."""
    keys = term_keys()
    terms: list[OfferTerm] = []
    seen: set[str] = set()
    for index, term in enumerate(raw):
        at = f"{where}: terms[{index}]"
        if len(term) != 1 or next(iter(term)) not in keys:
            problems.append(
                f"{at}: must be one mapping {{<term>: {{...}}}}, <term> one of: " + ", ".join(keys)
            )
            continue
        key, body = next(iter(term.items()))
        if key in seen:
            problems.append(f"{at}: {key}: the offer has this term twice")
        seen.add(key)
        if not isinstance(body, dict):
            problems.append(f"{at}: {key}: must be a mapping of the term's members")
            continue
        derived = sorted({"type", "id"} & set(body))
        if derived:
            problems.append(f"{at}: {key}: {', '.join(derived)}: derived, not written")
            continue
        _check(key, body, f"{at}.{key}", problems)
        if key == "usageBasedPricingTerm":
            _check_priced_dimensions(body, dimensions, f"{at}.{key}", problems)
        terms.append(OfferTerm(key, json.dumps(body, separators=(",", ":"), default=str)))
    return tuple(terms)


def _check(key: str, body: dict[str, Any], at: str, problems: list[str]) -> None:
    value = {"type": term_keys()[key], "id": "term-0", **body}
    violations = Violations()
    try:
        term_checker(key)(json.loads(json.dumps(value, default=str)), "", violations)
    except SerializationException as error:
        problems.append(f"{at}: {error.message}")
        return
    problems.extend(f"{at}: {violation}" for violation in violations)


def _check_priced_dimensions(
    body: dict[str, Any], dimensions: Sequence[str], at: str, problems: list[str]
) -> None:
    for card in body.get("rateCards") or ():
        for item in (card.get("rateCard") if isinstance(card, dict) else None) or ():
            key = item.get("dimensionKey") if isinstance(item, dict) else None
            if isinstance(key, str) and key not in dimensions:
                problems.append(f"{at}: rateCard: {key} is not a dimension of the product")
