"""The offers routes of the admin API (docs/catalog.md, "Offers"), in process on each backend
over tests/data/catalog_offers.yaml: list, show, add, replace, delete; terms checked against the
Agreement API's model (400 naming the field), an offer an agreement was made on kept (409)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.store.base import OperatorStore
from tests.admin.test_catalog_api import Catalog
from tests.conftest import OpenStore

OFFERS_CATALOG = Path(__file__).parent.parent / "data" / "catalog_offers.yaml"
PUBLIC = {
    "offer_id": "offer-testpublic001",
    "product": "prod-ca",
    "name": "Public pay as you go",
    "buyers": [],
    "terms": [
        {"legalTerm": {"documents": [{"type": "StandardEula", "version": "2022-07-14"}]}},
        {"supportTerm": {"refundPolicy": "No refunds."}},
        {
            "usageBasedPricingTerm": {
                "currencyCode": "USD",
                "rateCards": [{"rateCard": [{"dimensionKey": "requests", "price": "0.001"}]}],
            }
        },
        {
            "freeTrialPricingTerm": {
                "duration": "P14D",
                "grants": [{"dimensionKey": "requests", "maxQuantity": 1000}],
            }
        },
    ],
}
NEW: dict[str, Any] = {
    "offer_id": "offer-new0000001",
    "product": "prod-legacy",
    "buyers": ["777788889999"],
    "terms": [{"byolPricingTerm": {}}],
}


@pytest.fixture
def catalog(store_url: str, open_test_store: OpenStore) -> Catalog:
    ledger: OperatorStore = open_test_store(store_url)
    ledger.apply_catalog_now(load_catalog_file(OFFERS_CATALOG))
    return Catalog(ledger)


def test_offers_are_listed_and_shown_as_their_entries(catalog: Catalog) -> None:
    listed = catalog.ok("GET", "/offers")["offers"]
    assert [offer["offer_id"] for offer in listed] == ["offer-testcontract1", "offer-testpublic001"]
    assert catalog.ok("GET", "/offers/offer-testpublic001") == PUBLIC


def test_an_offer_is_added_replaced_and_deleted(catalog: Catalog) -> None:
    version = catalog.version
    assert catalog.ok("POST", "/offers", NEW, 201) == {**NEW, "name": ""}
    assert catalog.version == version + 1
    renamed = {**NEW, "name": "BYOL for Bob"}
    assert catalog.ok("PUT", "/offers/offer-new0000001", renamed)["name"] == "BYOL for Bob"
    catalog.ok("DELETE", "/offers/offer-new0000001", status=204)
    assert catalog.refused(404, "GET", "/offers/offer-new0000001") == {
        "error": "no offer with offer_id offer-new0000001",
        "field": "offerId",
    }


def test_bad_terms_and_conflicts_are_refused(catalog: Catalog) -> None:
    bad = {**NEW, "terms": [{"usageBasedPricingTerm": {"currencyCode": "dollars"}}]}
    at = "terms[0].usageBasedPricingTerm"
    assert catalog.refused(400, "POST", "/offers", bad) == {
        "error": f"{at}: Value 'dollars' at 'currencyCode' failed to satisfy constraint: Member "
        f"must have length less than or equal to 3; {at}: Value 'dollars' at 'currencyCode' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Z]+",
        "field": at,
    }
    assert catalog.refused(409, "POST", "/offers", PUBLIC) == {
        "error": "offer offer-testpublic001 already exists",
        "field": "offer_id",
    }
    assert catalog.refused(409, "DELETE", "/offers/offer-testpublic001") == {
        "error": "offer offer-testpublic001 has agreements: "
        "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002",
        "field": "offerId",
    }
    assert catalog.refused(400, "PUT", "/offers/offer-testpublic001", NEW) == {
        "error": "must be 'offer-testpublic001', the entry this path names",
        "field": "offer_id",
    }
