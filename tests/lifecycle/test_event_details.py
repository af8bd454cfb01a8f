"""Every ``detail`` field of the EventBridge events, as AWS's Seller Guide prints them
(docs/subscription-lifecycle.md, "The messages"): the offer every agreement comes from, and the
proposer's name on Created."""

from __future__ import annotations

import re
from dataclasses import replace

from marketmeter.catalog.model import CatalogSnapshot, Seller, product_id_for
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.messages import public_offer_id
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from tests.lifecycle.test_lifecycle import CA_ARN, HOUR, T, catalog


def named_seller() -> CatalogSnapshot:
    snapshot = catalog()
    sellers = (Seller("111122223333", "Example Corp"),)
    return CatalogSnapshot(2, replace(snapshot.catalog, sellers=sellers))


def test_created_names_the_proposer_and_the_products_public_offer() -> None:
    done = lifecycle.subscribe(
        named_seller(), "prod-ca", "555566667777", T, SequentialTokens(), SequentialIds()
    )
    [event] = done.events
    detail = event.body["detail"]
    assert detail["proposer"] == {"accountId": "111122223333", "name": "Example Corp"}
    assert detail["offer"] == {"id": public_offer_id("prod-ca")}
    assert re.fullmatch(r"offer-[0-9a-z]{13}", public_offer_id("prod-ca"))
    assert public_offer_id("prod-ca") != public_offer_id("prod-legacy")


def test_license_events_carry_product_code_and_id_and_no_proposer_name() -> None:
    snapshot = named_seller()
    [event] = lifecycle.suspend(snapshot, CA_ARN, T, SequentialIds()).events
    assert event.body["detail-type"] == "License Deprovisioned - Manufacturer"
    assert event.body["detail"]["product"] == {"code": "prod-ca", "id": product_id_for("prod-ca")}
    assert event.body["detail"]["proposer"] == {"accountId": "111122223333"}
    assert event.body["detail"]["offer"] == {"id": "offer-1"}  # the subscription's own


def test_ended_names_the_public_offer_when_the_subscription_named_none() -> None:
    ids = SequentialIds()
    subscribed = lifecycle.subscribe(
        catalog(), "prod-ca", "555566667777", T, SequentialTokens(), ids
    )
    assert subscribed.agreement is not None
    snapshot = catalog()
    with_it = replace(
        snapshot.catalog, agreements=(*snapshot.catalog.agreements, subscribed.agreement)
    )
    ended = lifecycle.unsubscribe(
        CatalogSnapshot(2, with_it), subscribed.agreement.license_arn, T, HOUR, ids
    )
    [event] = ended.events
    assert event.body["detail-type"] == "Purchase Agreement Ended - Proposer"
    assert event.body["detail"]["offer"] == {"id": public_offer_id("prod-ca")}
