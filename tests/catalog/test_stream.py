"""A catalog read entry by entry (``stream_catalog``: files, the admin API's bulk form) is
checked exactly as one held at once (``load_catalog``): the same catalog, the same problems in
the same order, whatever order its sections come in."""

from __future__ import annotations

import pytest

from marketmeter.catalog.checks import KnownKeys
from marketmeter.catalog.loader import CatalogError, as_catalog, load_catalog, stream_catalog
from marketmeter.catalog.model import Catalog

SELLERS = 'sellers:\n  - {account_id: "111122223333"}\n'
PRODUCTS = (
    'products:\n  - {product_code: p1, seller: "111122223333", kind: saas, dimensions: [u]}\n'
)
BUYERS = 'buyers:\n  - {account_id: "444455556666", customer_identifier: c1}\n'
AGREEMENTS = 'agreements:\n  - {buyer: "444455556666", product: p1}\n'


def streamed(text: str, existing: Catalog | None = None) -> Catalog:
    return as_catalog(stream_catalog(text, KnownKeys.of(existing or Catalog()), "cat.yaml"))


def problems(load: object, text: str) -> list[str]:
    assert callable(load)
    with pytest.raises(CatalogError) as caught:
        load(text)
    return caught.value.problems


@pytest.mark.parametrize(
    "text",
    [
        SELLERS + PRODUCTS + BUYERS + AGREEMENTS,
        AGREEMENTS + BUYERS + PRODUCTS + SELLERS,  # every reference points forward
        BUYERS + AGREEMENTS + SELLERS + PRODUCTS,
    ],
)
def test_sections_in_any_order_make_the_same_catalog(text: str) -> None:
    assert (
        streamed(text)
        == load_catalog(text)
        == load_catalog(SELLERS + PRODUCTS + BUYERS + AGREEMENTS)
    )


@pytest.mark.parametrize(
    "text",
    [
        AGREEMENTS.replace("p1", "p2") + SELLERS + PRODUCTS + BUYERS,
        BUYERS.replace("444455556666", "111122223333") + SELLERS,  # a buyer that is a seller
        SELLERS + SELLERS.replace("sellers:\n", "") + PRODUCTS.replace("saas", "sas"),
        PRODUCTS + BUYERS + AGREEMENTS.replace("product: p1", "product: p1, colour: red"),
        "nonsense: [1]\n" + SELLERS + "products: {a: 1}\n",
        SELLERS
        + 'buyers:\n  - {account_id: "1"}\n  - {account_id: "444455556666", name: "a\\0b"}\n',
    ],
)
def test_a_bad_catalog_streamed_has_the_problems_it_has_held(text: str) -> None:
    held = problems(lambda t: load_catalog(t, source="cat.yaml"), text)
    assert problems(streamed, text) == held


CONTRACT = (
    'products:\n  - product_code: p2\n    seller: "111122223333"\n    kind: saas\n'
    "    dimensions: [seats]\n    pricing_model: contract\n"
    "    notification_targets: [{name: q, kind: sqs, queue_url: 'http://sqs.local/q'}]\n"
)
OFFERS = 'offers:\n  - offer_id: offer-p2\n    product: p2\n    buyers: ["444455556666"]\n'
CONTRACT_AGREEMENTS = (
    'agreements:\n  - buyer: "444455556666"\n    product: p2\n    offer: offer-p2\n'
    "    configuration: {selector: P12M, dimensions: {seats: 5}}\n"
    "    entitlements: [{dimension: seats, value: 5}]\n"
)


@pytest.mark.parametrize(
    "text",
    [
        SELLERS + CONTRACT + BUYERS + OFFERS + CONTRACT_AGREEMENTS,
        CONTRACT_AGREEMENTS + OFFERS + BUYERS + CONTRACT + SELLERS,  # every reference forward
        OFFERS + CONTRACT_AGREEMENTS + SELLERS + BUYERS + CONTRACT,
    ],
)
def test_offers_entitlements_and_targets_in_any_order_make_the_same_catalog(text: str) -> None:
    catalog = streamed(text)
    assert catalog == load_catalog(text)
    assert catalog == load_catalog(SELLERS + CONTRACT + BUYERS + OFFERS + CONTRACT_AGREEMENTS)
    assert [o.offer_id for o in catalog.offers] == ["offer-p2"]
    assert [t.name for t in catalog.products[0].notification_targets] == ["q"]
    (agreement,) = catalog.agreements
    assert [(e.dimension, e.value) for e in agreement.entitlements] == [("seats", 5)]
    assert agreement.offer_id == "offer-p2"
    assert agreement.configuration.dimensions == (("seats", 5),)


@pytest.mark.parametrize(
    "text",
    [
        # an offer of another product, entitlements of a product priced by usage
        SELLERS
        + CONTRACT
        + PRODUCTS.replace("products:\n", "")
        + BUYERS
        + OFFERS
        + CONTRACT_AGREEMENTS.replace("product: p2", "product: p1"),
        # the same, every reference forward
        CONTRACT_AGREEMENTS.replace("product: p2", "product: p1")
        + OFFERS
        + BUYERS
        + (CONTRACT + PRODUCTS.replace("products:\n", ""))
        + SELLERS,
        # no such offer, a private offer to another buyer, a target without its queue
        SELLERS
        + CONTRACT.replace("queue_url: 'http://sqs.local/q'", "region: us-east-1")
        + BUYERS
        + OFFERS.replace("444455556666", "777788889999")
        + CONTRACT_AGREEMENTS
        + CONTRACT_AGREEMENTS.replace("agreements:\n", "").replace("offer-p2", "offer-none"),
    ],
)
def test_bad_offers_and_entitlements_streamed_have_the_problems_they_have_held(
    text: str,
) -> None:
    held = problems(lambda t: load_catalog(t, source="cat.yaml"), text)
    assert held
    assert problems(streamed, text) == held


def test_what_only_a_streamed_catalog_refuses() -> None:
    assert problems(streamed, SELLERS + SELLERS) == [
        "sellers: listed twice",
        "sellers[0] (111122223333): account_id: listed twice",
    ]
    aliased = problems(streamed, "sellers: &all\n  - {account_id: '111122223333'}\nx: *all\n")
    assert aliased[0].startswith("not valid YAML: an alias to a whole section ('all') is refused")


@pytest.mark.parametrize("text", ["sellers: [{account_id: 2001-13-45}]", "sellers: [!!int x]"])
def test_a_scalar_its_tag_cannot_hold_is_a_problem_not_a_crash(text: str) -> None:
    held = problems(lambda t: load_catalog(t, source="cat.yaml"), text)
    assert [p.split(":")[0] for p in (*held, *problems(streamed, text))] == ["not valid YAML"] * 2
