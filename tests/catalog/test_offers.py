"""The catalog's offers (docs/catalog.md, "Offers"): terms in the Agreement API's shape,
checked against botocore's model; private offers; agreements naming their offer and the buyer's
choices; and every catalog without offers loading as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketmeter.catalog.loader import CatalogError, load_catalog, load_catalog_file
from marketmeter.catalog.model import AcceptedConfiguration, OfferTerm

DATA = Path(__file__).parent.parent / "data"

BASE = """
sellers: [{account_id: "111122223333"}]
products:
  - {product_code: prod-ca, seller: "111122223333", kind: saas, dimensions: [requests]}
buyers: [{account_id: "444455556666"}, {account_id: "777788889999"}]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(BASE + text, source="cat.yaml")
    return caught.value.problems


def test_an_offers_terms_are_kept_in_the_apis_shape() -> None:
    catalog = load_catalog(
        BASE
        + """
offers:
  - offer_id: offer-private00001
    product: prod-ca
    buyers: ["444455556666"]
    terms:
      - usageBasedPricingTerm:
          currencyCode: USD
          rateCards: [{rateCard: [{dimensionKey: requests, price: "0.01"}]}]
      - renewalTerm: {}
agreements:
  - buyer: "444455556666"
    product: prod-ca
    offer: offer-private00001
    configuration: {selector: P1M, dimensions: {seats: 3}, auto_renew: false}
"""
    )
    [offer] = catalog.offers
    assert (offer.offer_id, offer.private, offer.buyers) == (
        "offer-private00001",
        True,
        ("444455556666",),
    )
    assert offer.terms == (
        OfferTerm(
            "usageBasedPricingTerm",
            '{"currencyCode":"USD","rateCards":[{"rateCard":[{"dimensionKey":"requests",'
            '"price":"0.01"}]}]}',
        ),
        OfferTerm("renewalTerm", "{}"),
    )
    [agreement] = catalog.agreements
    assert agreement.offer_id == "offer-private00001"
    assert agreement.configuration == AcceptedConfiguration("P1M", (("seats", 3),), False)


def test_terms_are_checked_against_the_agreement_model() -> None:
    assert problems_of(
        """
offers:
  - offer_id: offer-bad
    product: prod-ca
    terms:
      - pricingTerm: {}
      - legalTerm: {documents: [{type: StandardEula}], id: term-1}
      - usageBasedPricingTerm:
          {currencyCode: usd, rateCards: [{rateCard: [{dimensionKey: x, price: "1"}]}]}
      - validityTerm: {agreementDuration: 12}
"""
    ) == [
        "offers[0] (offer-bad): terms[0]: must be one mapping {<term>: {...}}, <term> one of: "
        "legalTerm, supportTerm, renewalTerm, usageBasedPricingTerm, "
        "configurableUpfrontPricingTerm, byolPricingTerm, recurringPaymentTerm, validityTerm, "
        "paymentScheduleTerm, freeTrialPricingTerm, fixedUpfrontPricingTerm, "
        "variablePaymentTerm, netPaymentTerm",
        "offers[0] (offer-bad): terms[1]: legalTerm: id: derived, not written",
        "offers[0] (offer-bad): terms[2].usageBasedPricingTerm: Value 'usd' at 'currencyCode' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Z]+",
        "offers[0] (offer-bad): terms[2].usageBasedPricingTerm: rateCard: x is not a dimension "
        "of the product",
        "offers[0] (offer-bad): terms[3].validityTerm: Unexpected value type at "
        "'agreementDuration': expected a string",
    ]


def test_offer_references_are_checked() -> None:
    assert problems_of(
        """
offers:
  - {offer_id: offer-a, product: prod-x, buyers: ["000000000000"]}
  - {offer_id: offer-b, product: prod-ca, buyers: ["777788889999"]}
  - {offer_id: offer-a, product: prod-ca}
agreements:
  - {buyer: "444455556666", product: prod-ca, offer: offer-b}
  - {buyer: "444455556666", product: prod-ca, offer: offer-none, start: 2021-01-01T00:00:00Z}
"""
    ) == [
        "offers[0] (offer-a): product: no product with product_code prod-x",
        "offers[0] (offer-a): buyers[0]: no buyer with account_id 000000000000",
        "offers[2] (offer-a): offer_id: listed twice",
        "agreements[0] (444455556666 × prod-ca): offer: offer-b is a private offer not extended "
        "to 444455556666",
        "agreements[1] (444455556666 × prod-ca): offer: no offer with offer_id offer-none",
    ]


def test_a_catalog_without_offers_means_what_it_meant() -> None:
    catalog = load_catalog_file(DATA / "catalog.yaml")
    assert catalog.offers == ()
    assert {a.offer_id for a in catalog.agreements} == {None}
    assert {a.configuration for a in catalog.agreements} == {AcceptedConfiguration()}


def test_the_demo_catalog_and_the_offers_test_catalog_load() -> None:
    assert len(load_catalog_file(DATA / "catalog_offers.yaml").offers) == 2
