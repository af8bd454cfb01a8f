"""What a buyer gets on subscribing to a product sold by contract: the offer's configurable
upfront pricing term, configured as the buyer chose (docs/subscription-lifecycle.md, "A
contract's subscription").

The term is the accepted offer's ``configurableUpfrontPricingTerm`` (an offer of the catalog),
else the one marketmeter derives for the product (``catalog.contracts.derived_upfront_term``:
twelve months, any quantity of any dimension). The buyer picks a rate card by its selector (the
contract's duration; default the first card's) and a quantity of some of its dimensions
(default one unit of its first). The card's constraints hold as AWS's offers state them:
``quantityConfiguration: Disallowed`` buys exactly 1 (a tier), ``multipleDimensionSelection:
Disallowed`` one dimension. The agreement then runs from its start for that duration, with an
``IntegerValue`` entitlement of each quantity bought: what GetEntitlements answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from marketmeter.catalog.contracts import add_duration, derived_upfront_term
from marketmeter.catalog.model import AcceptedConfiguration, Entitlement, Offer, Product
from marketmeter.refusal import Refusal

__all__ = ["ContractGrant", "contract_grant"]

_TERM = "configurableUpfrontPricingTerm"


@dataclass(frozen=True, slots=True)
class ContractGrant:
    configuration: AcceptedConfiguration  # what was chosen, defaults filled in
    entitlements: tuple[Entitlement, ...]
    ends_at: float | None


def _upfront_term(product: Product, offer: Offer | None) -> dict[str, Any] | None:
    if offer is None:
        return derived_upfront_term(product.dimensions)
    for term in offer.terms:
        if term.key == _TERM:
            body: dict[str, Any] = json.loads(term.body)
            return body
    return None


def _selector(card: dict[str, Any]) -> str | None:
    value = (card.get("selector") or {}).get("value")
    return value if isinstance(value, str) else None


def contract_grant(
    product: Product,
    offer: Offer | None,
    chosen: AcceptedConfiguration,
    starts_at: float,
) -> ContractGrant | None:
    """The grant of a new agreement on ``offer`` (``None``: the product's derived offer), or
    ``None`` when the offer sells no configurable contract. ``Refusal`` (field
    ``configuration...``) for a choice the offer does not allow."""
    term = _upfront_term(product, offer)
    if term is None:
        if chosen.selector is not None or chosen.dimensions:
            name = offer.offer_id if offer is not None else product.product_code
            raise Refusal("configuration", f"offer {name} has no {_TERM} to configure")
        return None
    cards = [card for card in term.get("rateCards") or [] if isinstance(card, dict)]
    if not cards:
        return None
    selectors = [_selector(card) for card in cards]
    selector = chosen.selector if chosen.selector is not None else selectors[0]
    if selector not in selectors:
        known = ", ".join(s for s in selectors if s is not None)
        raise Refusal(
            "configuration.selector", f"{selector!r} is not a selector of the offer: {known}"
        )
    card = cards[selectors.index(selector)]
    priced = [
        str(price.get("dimensionKey"))
        for price in card.get("rateCard") or []
        if isinstance(price, dict) and price.get("dimensionKey") in product.dimensions
    ]
    if not priced:
        return None
    dimensions = chosen.dimensions or ((priced[0], 1),)
    constraints = card.get("constraints") or {}
    for dimension, quantity in dimensions:
        if dimension not in priced:
            raise Refusal(
                f"configuration.dimensions.{dimension}",
                f"not a dimension of the rate card: {', '.join(priced)}",
            )
        if quantity != 1 and constraints.get("quantityConfiguration") == "Disallowed":
            raise Refusal(
                f"configuration.dimensions.{dimension}",
                "the rate card allows no quantity (quantityConfiguration: Disallowed): 1",
            )
    if len(dimensions) > 1 and constraints.get("multipleDimensionSelection") == "Disallowed":
        raise Refusal(
            "configuration.dimensions",
            "the rate card allows one dimension (multipleDimensionSelection: Disallowed)",
        )
    by_dimension = dict(dimensions)
    entitlements = tuple(
        Entitlement(dimension, by_dimension[dimension])
        for dimension in product.dimensions
        if dimension in by_dimension
    )
    configuration = AcceptedConfiguration(
        selector,
        tuple((d, by_dimension[d]) for d in product.dimensions if d in by_dimension),
        chosen.auto_renew,
    )
    ends_at = add_duration(starts_at, selector) if selector is not None else None
    return ContractGrant(configuration, entitlements, ends_at)
