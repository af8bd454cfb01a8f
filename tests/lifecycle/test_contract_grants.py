"""What a contract subscription grants (lifecycle.contract_grants, and subscribe with it): the
offer's rate card as configured, its constraints, the derived card, the duration on the
calendar, and the messages of a new contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from marketmeter.catalog.model import (
    AcceptedConfiguration,
    Catalog,
    CatalogSnapshot,
    Entitlement,
    Integration,
    Offer,
    OfferTerm,
    PricingModel,
    Product,
    ProductKind,
    Seller,
)
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.contract_grants import ContractGrant, contract_grant
from marketmeter.lifecycle.types import LifecycleAction
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.refusal import Refusal

JAN_31 = datetime(2027, 1, 31, tzinfo=UTC).timestamp()
CONTRACT = Product(
    "prod-contract",
    "111122223333",
    ProductKind.SAAS,
    ("seats", "tier"),
    pricing_model=PricingModel.CONTRACT,
)


def upfront(*cards: dict[str, object]) -> Offer:
    body = {"currencyCode": "USD", "rateCards": list(cards)}
    term = OfferTerm("configurableUpfrontPricingTerm", json.dumps(body))
    return Offer("offer-x", "prod-contract", terms=(term,))


def card(selector: str, *dimensions: str, **constraints: str) -> dict[str, object]:
    return {
        "selector": {"type": "Duration", "value": selector},
        "constraints": {
            "multipleDimensionSelection": "Allowed",
            "quantityConfiguration": "Allowed",
            **constraints,
        },
        "rateCard": [{"dimensionKey": d, "price": "1.00"} for d in dimensions],
    }


def choose(selector: str | None = None, **dimensions: int) -> AcceptedConfiguration:
    return AcceptedConfiguration(selector, tuple(dimensions.items()))


def test_the_derived_card_sells_one_of_the_first_dimension_for_twelve_months() -> None:
    grant = contract_grant(CONTRACT, None, AcceptedConfiguration(), JAN_31)
    assert grant == ContractGrant(
        AcceptedConfiguration("P12M", (("seats", 1),)),
        (Entitlement("seats", 1),),
        datetime(2028, 1, 31, tzinfo=UTC).timestamp(),
    )


def test_the_chosen_card_and_quantities_in_the_products_order() -> None:
    offer = upfront(card("P12M", "seats"), card("P1M", "seats", "tier"))
    grant = contract_grant(CONTRACT, offer, choose("P1M", tier=1, seats=25), JAN_31)
    assert grant is not None
    assert grant.entitlements == (Entitlement("seats", 25), Entitlement("tier", 1))
    assert grant.configuration.dimensions == (("seats", 25), ("tier", 1))
    assert grant.ends_at == datetime(2027, 2, 28, tzinfo=UTC).timestamp()  # a calendar month


@pytest.mark.parametrize(
    ("offer", "chosen", "field", "message"),
    [
        (
            upfront(card("P12M", "seats")),
            choose("P24M"),
            "configuration.selector",
            "'P24M' is not a selector of the offer: P12M",
        ),
        (
            upfront(card("P12M", "seats")),
            choose(tier=1),
            "configuration.dimensions.tier",
            "not a dimension of the rate card: seats",
        ),
        (
            upfront(card("P12M", "tier", quantityConfiguration="Disallowed")),
            choose(tier=2),
            "configuration.dimensions.tier",
            "the rate card allows no quantity (quantityConfiguration: Disallowed): 1",
        ),
        (
            upfront(card("P12M", "seats", "tier", multipleDimensionSelection="Disallowed")),
            choose(seats=1, tier=1),
            "configuration.dimensions",
            "the rate card allows one dimension (multipleDimensionSelection: Disallowed)",
        ),
        (
            Offer("offer-usage", "prod-contract"),
            choose("P12M"),
            "configuration",
            "offer offer-usage has no configurableUpfrontPricingTerm to configure",
        ),
    ],
)
def test_a_choice_the_offer_does_not_allow_is_refused(
    offer: Offer, chosen: AcceptedConfiguration, field: str, message: str
) -> None:
    with pytest.raises(Refusal) as refused:
        contract_grant(CONTRACT, offer, chosen, JAN_31)
    assert (refused.value.field, refused.value.message) == (field, message)


def test_an_offer_without_a_contract_term_grants_nothing() -> None:
    assert contract_grant(CONTRACT, Offer("o", "prod-contract"), choose(), JAN_31) is None


def _catalog(integration: Integration) -> CatalogSnapshot:
    product = Product(
        "prod-contract",
        "111122223333",
        ProductKind.SAAS,
        ("seats", "tier"),
        integration,
        pricing_model=PricingModel.CONTRACT_WITH_CONSUMPTION,
    )
    usage = Product("prod-usage", "111122223333", ProductKind.SAAS, ("users",))
    return CatalogSnapshot(1, Catalog(sellers=(Seller("111122223333"),), products=(product, usage)))


@pytest.mark.parametrize(
    ("integration", "told"),
    [
        (Integration.LEGACY, ["subscribe-success", "entitlement-updated"]),
        (
            Integration.CONCURRENT_AGREEMENTS,
            ["Purchase Agreement Created - Proposer", "License Updated - Manufacturer"],
        ),
    ],
)
def test_a_new_contract_is_created_then_its_entitlement_told(
    integration: Integration, told: list[str]
) -> None:
    done = lifecycle.subscribe(
        _catalog(integration),
        "prod-contract",
        "444455556666",
        JAN_31,
        SequentialTokens(),
        SequentialIds(),
        configuration=choose(seats=3),
    )
    assert done.agreement is not None
    assert done.agreement.entitlements == (Entitlement("seats", 3),)
    assert done.changes.agreements == (done.agreement,)
    assert [e.action for e in done.events] == [
        LifecycleAction.SUBSCRIBE_SUCCESS,
        LifecycleAction.ENTITLEMENT_UPDATED,
    ]
    if integration is Integration.LEGACY:
        assert [json.loads(e.body["Message"])["action"] for e in done.events] == told
        assert done.events[1].topic.endswith(":aws-mp-entitlement-notification-prod-contract")
    else:
        assert [e.topic for e in done.events] == told
        created = done.events[0].body["detail"]["agreement"]
        assert created["endTime"] == "2028-01-31T00:00:00Z"


def test_a_usage_product_takes_no_configuration() -> None:
    with pytest.raises(Refusal) as refused:
        lifecycle.subscribe(
            _catalog(Integration.LEGACY),
            "prod-usage",
            "444455556666",
            JAN_31,
            SequentialTokens(),
            SequentialIds(),
            configuration=choose(users=2),
        )
    assert refused.value.field == "configuration"
