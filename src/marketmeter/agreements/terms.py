"""An agreement's accepted terms: its offer's terms with the buyer's choices filled in.

The offer is the catalog's (``offers:``) when the agreement names one the catalog holds;
otherwise it is *derived* from the product (docs/agreement-api.md, "Offers and terms"): a
public offer (``catalog.model.default_offer_id_for``, or the offer id the agreement was
subscribed with) whose terms are a standard EULA, a usage-based rate card pricing each of the
product's dimensions at ``0.00`` USD (marketmeter knows no prices) unless the product is sold by
contract alone, a configurable upfront pricing term when it is sold by contract
(``catalog.contracts.derived_upfront_term``: twelve months, any quantity of any dimension, at
``0.00``), a 30-day free trial when the agreement is a free trial, and a validity term when the
agreement has an end date.

Each term carries its ``type`` and a stable ``id`` (``catalog.model.term_id_for``); the
buyer's choices go into ``configuration``: the contract's duration and quantities
(``configurableUpfrontPricingTerm``; by default the first rate card's duration, and the
agreement's whole-number entitlements of the card's dimensions, else one unit of its first),
auto-renewal (``renewalTerm``; off unless chosen), the agreement's dates (``validityTerm``).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from marketmeter.agreements.timing import add_duration, days_between, wire_time
from marketmeter.catalog.contracts import DEFAULT_CURRENCY, derived_upfront_term
from marketmeter.catalog.model import (
    Agreement,
    CatalogSnapshot,
    Offer,
    OfferTerm,
    PricingModel,
    Product,
    default_offer_id_for,
    term_id_for,
)

__all__ = [
    "DEFAULT_CURRENCY",
    "accepted_terms",
    "derived_offer",
    "estimated_charges",
    "free_trial_end",
    "offer_of",
    "term_of",
]

# The term types (AcceptedTerm members) and the type each holds, for the derived offer.
_TYPES = {
    "legalTerm": "LegalTerm",
    "supportTerm": "SupportTerm",
    "renewalTerm": "RenewalTerm",
    "usageBasedPricingTerm": "UsageBasedPricingTerm",
    "configurableUpfrontPricingTerm": "ConfigurableUpfrontPricingTerm",
    "byolPricingTerm": "ByolPricingTerm",
    "recurringPaymentTerm": "RecurringPaymentTerm",
    "validityTerm": "ValidityTerm",
    "paymentScheduleTerm": "PaymentScheduleTerm",
    "freeTrialPricingTerm": "FreeTrialPricingTerm",
    "fixedUpfrontPricingTerm": "FixedUpfrontPricingTerm",
    "variablePaymentTerm": "VariablePaymentTerm",
    "netPaymentTerm": "NetPaymentTerm",
}
DERIVED_FREE_TRIAL = "P30D"
STANDARD_EULA_VERSION = "2022-07-14"


def _term(key: str, body: dict[str, Any]) -> OfferTerm:
    return OfferTerm(key, json.dumps(body, separators=(",", ":")))


def derived_offer(product: Product, agreement: Agreement) -> Offer:
    """The public offer of a product the catalog gives no offer for (module docstring)."""
    terms = [
        _term(
            "legalTerm", {"documents": [{"type": "StandardEula", "version": STANDARD_EULA_VERSION}]}
        ),
    ]
    if agreement.free_trial:
        grants = [{"dimensionKey": dimension} for dimension in product.dimensions]
        terms.append(
            _term("freeTrialPricingTerm", {"duration": DERIVED_FREE_TRIAL, "grants": grants})
        )
    if product.pricing_model.has_entitlements:
        terms.append(
            _term("configurableUpfrontPricingTerm", derived_upfront_term(product.dimensions))
        )
    if product.pricing_model is not PricingModel.CONTRACT:  # usage is metered
        card = [{"dimensionKey": dimension, "price": "0.00"} for dimension in product.dimensions]
        terms.append(
            _term(
                "usageBasedPricingTerm",
                {"currencyCode": DEFAULT_CURRENCY, "rateCards": [{"rateCard": card}]},
            )
        )
    if agreement.starts_at is not None and agreement.ends_at is not None:
        duration = f"P{days_between(agreement.starts_at, agreement.ends_at)}D"
        terms.append(_term("validityTerm", {"agreementDuration": duration}))
    offer_id = agreement.offer_id or default_offer_id_for(product.product_code)
    return Offer(offer_id, product.product_code, "", (), tuple(terms))


def offer_of(snapshot: CatalogSnapshot, agreement: Agreement) -> Offer:
    """The offer the agreement was made on: the catalog's, or the derived one."""
    offer = snapshot.offers.get(agreement.offer_id) if agreement.offer_id else None
    if offer is not None and offer.product_code == agreement.product_code:
        return offer
    return derived_offer(snapshot.products[agreement.product_code], agreement)


def accepted_terms(offer: Offer, agreement: Agreement) -> list[dict[str, Any]]:
    """The ``acceptedTerms`` of the agreement: one ``{<member>: term}`` per offer term."""
    accepted = []
    for position, term in enumerate(offer.terms):
        type_name = _TYPES[term.key]
        body: dict[str, Any] = {
            "type": type_name,
            "id": term_id_for(offer.offer_id, position, type_name),
            **json.loads(term.body),
        }
        _configure(term.key, body, agreement)
        accepted.append({term.key: body})
    return accepted


def term_of(terms: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    for term in terms:
        if key in term:
            body: dict[str, Any] = term[key]
            return body
    return None


def _configure(key: str, body: dict[str, Any], agreement: Agreement) -> None:
    chosen = agreement.configuration
    if key == "configurableUpfrontPricingTerm":
        cards = body.get("rateCards") or [{}]
        selector = chosen.selector or (cards[0].get("selector") or {}).get("value") or "P12M"
        card = _card_for(cards, selector).get("rateCard") or [{}]
        chosen_dimensions = chosen.dimensions or _bought(agreement, card)
        dimensions = [
            {"dimensionKey": dimension, "dimensionValue": value}
            for dimension, value in chosen_dimensions
        ]
        if not dimensions:
            first = card[0]
            dimensions = [
                {"dimensionKey": first.get("dimensionKey", "default"), "dimensionValue": 1}
            ]
        body["configuration"] = {"selectorValue": selector, "dimensions": dimensions}
    elif key == "renewalTerm":
        given = (body.get("configuration") or {}).get("enableAutoRenew", False)
        enabled = chosen.auto_renew if chosen.auto_renew is not None else given
        body["configuration"] = {"enableAutoRenew": bool(enabled)}
    elif key == "validityTerm":
        if agreement.starts_at is not None and "agreementStartDate" not in body:
            body["agreementStartDate"] = wire_time(agreement.starts_at)
        if agreement.ends_at is not None and "agreementEndDate" not in body:
            body["agreementEndDate"] = wire_time(agreement.ends_at)


def _bought(agreement: Agreement, card: list[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    """What an agreement with no recorded configuration bought of the card: its whole-number
    entitlements of the card's dimensions (what GetEntitlements answers for it)."""
    priced = {price.get("dimensionKey") for price in card if isinstance(price, dict)}
    return tuple(
        (entitlement.dimension, entitlement.value)
        for entitlement in agreement.entitlements
        if type(entitlement.value) is int and entitlement.dimension in priced
    )


def _card_for(cards: list[dict[str, Any]], selector: str) -> dict[str, Any]:
    for card in cards:
        if (card.get("selector") or {}).get("value") == selector:
            return card
    return cards[0] if cards else {}


def _decimal(text: Any) -> Decimal:
    """A price or amount as a decimal; one that is not a finite number counts as 0."""
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def estimated_charges(terms: list[dict[str, Any]]) -> dict[str, str]:
    """``estimatedCharges``: the agreement's committed value — the sum of a payment schedule's
    installments when there is one, else the contract's chosen quantities at its rate card's
    prices plus a fixed upfront price; ``"0"`` for pay-as-you-go."""
    currency = DEFAULT_CURRENCY
    value = Decimal(0)
    schedule: Decimal | None = None
    for term in terms:
        ((key, body),) = term.items()
        currency = body.get("currencyCode", currency)
        if key == "configurableUpfrontPricingTerm":
            configuration = body.get("configuration") or {}
            card = _card_for(body.get("rateCards") or [], configuration.get("selectorValue", ""))
            prices = {
                i.get("dimensionKey"): _decimal(i.get("price")) for i in card.get("rateCard") or []
            }
            for chosen in configuration.get("dimensions") or []:
                value += prices.get(chosen["dimensionKey"], Decimal(0)) * chosen["dimensionValue"]
        elif key == "fixedUpfrontPricingTerm":
            value += _decimal(body.get("price"))
        elif key == "paymentScheduleTerm":
            schedule = sum(
                (_decimal(i.get("chargeAmount")) for i in body.get("schedule") or []), Decimal(0)
            )
    if schedule is not None:  # the installments are what the buyer pays
        value = schedule
    return {"currencyCode": currency, "agreementValue": _plain(value)}


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def free_trial_end(terms: list[dict[str, Any]], agreement: Agreement) -> float | None:
    """When the free trial ends: the agreement's start plus the free-trial term's duration."""
    trial = term_of(terms, "freeTrialPricingTerm")
    if trial is None or agreement.starts_at is None:
        return None
    return add_duration(agreement.starts_at, str(trial.get("duration", "")))
