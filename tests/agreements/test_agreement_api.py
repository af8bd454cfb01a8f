"""The Agreement API's rules (docs/agreement-api.md) over tests/data/catalog_offers.yaml at a
fixed clock: statuses, accepted terms (catalog offers and derived ones), estimated charges,
SearchAgreements' filters, sort and pages, and who may read what."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from marketmeter.agreements.service import AgreementApi
from marketmeter.agreements.status import agreement_status, entitlement_status
from marketmeter.agreements.terms import derived_offer
from marketmeter.agreements.timing import add_duration
from marketmeter.catalog.contracts import derived_upfront_term
from marketmeter.catalog.loader import load_catalog_file
from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    CatalogSnapshot,
    PricingModel,
    Product,
    ProductKind,
    agreement_id_for,
)
from marketmeter.errors import (
    AgreementAccessDeniedException,
    AgreementValidationException,
    AwsError,
    ResourceNotFoundException,
)
from marketmeter.lifecycle import transitions
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.metering.types import Caller
from marketmeter.refusal import Refusal
from marketmeter.store.base import Store

CATALOG = Path(__file__).parent.parent / "data" / "catalog_offers.yaml"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
SELLER = Caller("seller", "111122223333", "AKIATESTSELLER000001")
OTHER_SELLER = Caller("seller", "999988887777", "AKIATESTOTHERSELLER1")
BUYER = Caller("buyer", "444455556666", "AKIATESTALICE0000001")
OPEN = Caller.anonymous()

ALICE_CA = agreement_id_for(
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
)
BOB_CA = agreement_id_for(
    "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"
)
FRANK_LEGACY = agreement_id_for(
    "arn:aws:license-manager::666677778888:license:l-f0000000000000000000000000000001"
)
ERIN_CA = agreement_id_for(
    "arn:aws:license-manager::333344445555:license:l-e0000000000000000000000000000002"
)
OTHER = agreement_id_for(
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009"
)
LICENSE = "arn:aws:license-manager::"
PROPOSER = [
    {"name": "PartyType", "values": ["Proposer"]},
    {"name": "AgreementType", "values": ["PurchaseAgreement"]},
]


class _Catalog:
    """The one part of the store the rules read: the catalog snapshot."""

    def __init__(self) -> None:
        self.snapshot = CatalogSnapshot(1, load_catalog_file(CATALOG))

    async def catalog_snapshot(self) -> CatalogSnapshot:
        return self.snapshot


API = AgreementApi(cast(Store, _Catalog()), FixedClock(NOW))


def call(operation: str, params: dict[str, Any], caller: Caller = SELLER) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(getattr(API, operation)(params, caller))
    return result


def refused(operation: str, params: dict[str, Any], caller: Caller = SELLER) -> AwsError:
    with pytest.raises(AwsError) as raised:
        call(operation, params, caller)
    return raised.value


def test_a_contract_on_a_private_offer_is_described_with_its_value_and_renewal() -> None:
    assert call("describe_agreement", {"agreementId": ALICE_CA}) == {
        "agreementId": ALICE_CA,
        "acceptor": {"accountId": "444455556666"},
        "proposer": {"accountId": "111122223333"},
        "startTime": 1767225600,
        "endTime": 1798761600,
        "acceptanceTime": 1767225600,
        "agreementType": "PurchaseAgreement",
        "estimatedCharges": {"currencyCode": "USD", "agreementValue": "1000"},
        "proposalSummary": {
            "resources": [{"id": "prod-uvcnsfcl78h7f", "type": "SaaSProduct"}],
            "offerId": "offer-testcontract1",
        },
        "status": "ACTIVE",
        "initialAgreementId": ALICE_CA,
        "endTimeBehavior": {"type": "RENEW"},
    }


def test_the_public_offers_free_trial_gives_the_trial_end() -> None:
    described = call("describe_agreement", {"agreementId": BOB_CA})
    assert described["freeTrialSummary"] == {"trialEndTime": 1579046400}  # 2020-01-15
    assert described["estimatedCharges"] == {"currencyCode": "USD", "agreementValue": "0"}
    assert "endTime" not in described
    assert "endTimeBehavior" not in described


@pytest.mark.parametrize(
    ("agreement", "status"),
    [(FRANK_LEGACY, "EXPIRED"), (ERIN_CA, "ACTIVE")],
)
def test_statuses_follow_the_service_clock(agreement: str, status: str) -> None:
    assert call("describe_agreement", {"agreementId": agreement})["status"] == status


def test_suspended_and_unsubscribed_agreements_are_terminated_and_cancelled() -> None:
    carol = agreement_id_for(
        "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000001"
    )
    grace = agreement_id_for(
        "arn:aws:license-manager::888899990000:license:l-90000000000000000000000000000001"
    )
    assert call("describe_agreement", {"agreementId": carol})["status"] == "TERMINATED"
    assert call("describe_agreement", {"agreementId": grace})["status"] == "CANCELLED"


def test_the_contracts_terms_carry_the_buyers_choices() -> None:
    terms = call("get_agreement_terms", {"agreementId": ALICE_CA})["acceptedTerms"]
    assert [next(iter(term)) for term in terms] == [
        "legalTerm",
        "configurableUpfrontPricingTerm",
        "usageBasedPricingTerm",
        "validityTerm",
        "renewalTerm",
        "paymentScheduleTerm",
    ]
    upfront = terms[1]["configurableUpfrontPricingTerm"]
    assert upfront["type"] == "ConfigurableUpfrontPricingTerm"
    assert upfront["id"] == "term-78c3d80af610db3beb43b3c22e770f718c4102eb737d7fe1c572f03d5a27bee5"
    assert upfront["configuration"] == {
        "selectorValue": "P12M",
        "dimensions": [{"dimensionKey": "seats", "dimensionValue": 10}],
    }
    assert terms[3]["validityTerm"] == {
        "type": "ValidityTerm",
        "id": "term-ac6ef6fc0b16976cc8ca455e7a5e69b8fbcaba307dc3e4bb3a88ed231cc2b8ec",
        "agreementDuration": "P12M",
        "agreementStartDate": 1767225600,
        "agreementEndDate": 1798761600,
    }
    assert terms[4]["renewalTerm"]["configuration"] == {"enableAutoRenew": True}


def test_a_product_without_offers_gets_derived_terms() -> None:
    described = call("describe_agreement", {"agreementId": FRANK_LEGACY})
    assert described["proposalSummary"]["offerId"] == "offer-ocqo0b2ogwzd6"
    terms = call("get_agreement_terms", {"agreementId": FRANK_LEGACY})["acceptedTerms"]
    assert terms == [
        {
            "legalTerm": {
                "type": "LegalTerm",
                "id": "term-ce79b3997b2b87275bfe68f4bab74622f8633409542db543c543be695a15fda6",
                "documents": [{"type": "StandardEula", "version": "2022-07-14"}],
            }
        },
        {
            "usageBasedPricingTerm": {
                "type": "UsageBasedPricingTerm",
                "id": "term-2440f720163bc572ed5aabd8af154d89c430503728b19192babe56f5cded6649",
                "currencyCode": "USD",
                "rateCards": [
                    {
                        "rateCard": [
                            {"dimensionKey": "users", "price": "0.00"},
                            {"dimensionKey": "api_calls", "price": "0.00"},
                        ]
                    }
                ],
            }
        },
        {
            "validityTerm": {
                "type": "ValidityTerm",
                "id": "term-26ea2ac1488985e6788d57486f55ca19a30e0f37699cf20a5a8a710ec432b769",
                "agreementDuration": "P366D",
                "agreementStartDate": 1577836800,
                "agreementEndDate": 1609459200,
            }
        },
    ]


def test_terms_page_with_a_token_bound_to_the_agreement() -> None:
    first = call("get_agreement_terms", {"agreementId": ALICE_CA, "maxResults": 4})
    assert len(first["acceptedTerms"]) == 4
    second = call(
        "get_agreement_terms",
        {"agreementId": ALICE_CA, "maxResults": 4, "nextToken": first["nextToken"]},
    )
    assert [next(iter(t)) for t in second["acceptedTerms"]] == [
        "renewalTerm",
        "paymentScheduleTerm",
    ]
    assert "nextToken" not in second
    error = refused("get_agreement_terms", {"agreementId": BOB_CA, "nextToken": first["nextToken"]})
    assert isinstance(error, AgreementValidationException)
    assert (error.message, error.members()) == (
        "Provided nextToken is invalid",
        {"reason": "INVALID_NEXT_TOKEN"},
    )


def test_entitlements_follow_the_agreement() -> None:
    assert call("get_agreement_entitlements", {"agreementId": ALICE_CA}) == {
        "agreementEntitlements": [
            {
                "resource": {"id": "prod-uvcnsfcl78h7f", "type": "SaaSProduct"},
                "type": "License",
                "status": "PROVISIONED",
                "statusReasonCode": "AGREEMENT_ACTIVE",
                "licenseArn": (
                    "arn:aws:license-manager::444455556666:license:"
                    "l-a0000000000000000000000000000002"
                ),
            }
        ]
    }
    erin = call("get_agreement_entitlements", {"agreementId": ERIN_CA})["agreementEntitlements"]
    assert (erin[0]["status"], erin[0]["statusReasonCode"]) == ("SCHEDULED", "FUTURE_START_DATE")
    frank = call("get_agreement_entitlements", {"agreementId": FRANK_LEGACY})
    entitlement = frank["agreementEntitlements"][0]
    assert (entitlement["status"], entitlement["statusReasonCode"]) == (
        "DEPROVISIONED",
        "AGREEMENT_INACTIVE",
    )


def test_contacts_are_answered_without_an_acceptor_contact() -> None:
    assert call("get_agreement_contacts", {"agreementId": ALICE_CA}) == {}


def test_an_unknown_agreement_is_not_found() -> None:
    error = refused("describe_agreement", {"agreementId": "agmt-unknown"})
    assert isinstance(error, ResourceNotFoundException)
    assert (error.http_status, error.message, error.members()) == (
        404,
        "Agreement agmt-unknown not found",
        {"resourceId": "agmt-unknown", "resourceType": "Agreement"},
    )


@pytest.mark.parametrize(
    "operation",
    ["describe_agreement", "get_agreement_terms", "get_agreement_entitlements"],
)
def test_another_sellers_agreement_and_a_buyers_key_are_denied(operation: str) -> None:
    for caller, agreement in ((SELLER, OTHER), (OTHER_SELLER, ALICE_CA), (BUYER, ALICE_CA)):
        error = refused(operation, {"agreementId": agreement}, caller)
        assert isinstance(error, AgreementAccessDeniedException)
        assert (error.http_status, error.members()) == (403, {"reason": "INVALID_ACCESS"})
    assert call(operation, {"agreementId": OTHER}, OTHER_SELLER)
    assert call(operation, {"agreementId": OTHER}, OPEN)


def ids(output: dict[str, Any]) -> list[str]:
    return [summary["agreementId"] for summary in output["agreementViewSummaries"]]


def search(*filters: tuple[str, str], caller: Caller = SELLER, **more: Any) -> dict[str, Any]:
    params = {"filters": PROPOSER + [{"name": n, "values": [v]} for n, v in filters], **more}
    return call("search_agreements", params, caller)


def test_a_seller_finds_its_agreements_by_product_offer_status_and_license() -> None:
    everything = ids(search())
    assert len(everything) == 15  # every agreement but the other seller's
    assert OTHER not in everything
    assert ids(search(caller=OTHER_SELLER)) == [OTHER]
    assert ids(search(("OfferId", "offer-testcontract1"))) == [ALICE_CA]
    assert ids(search(("Status", "EXPIRED"))) == [FRANK_LEGACY]
    by_product = ids(search(("ResourceIdentifier", "prod-uvcnsfcl78h7f")))
    assert by_product == ids(search(("ResourceIdentifier", "prod-ca")))
    assert set(by_product) == {ALICE_CA, BOB_CA, ERIN_CA} | {
        agreement_id_for(
            "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000002"
        )
    }
    license_arn = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
    assert ids(search(("LicenseArn", license_arn))) == [ALICE_CA]
    assert ids(search(("AcceptorAccountId", "666677778888"))) == [FRANK_LEGACY]
    assert ids(search(("EndTimeBehaviorType", "RENEW"))) == [ALICE_CA]
    assert ids(search(("ResourceType", "AmiProduct"))) == [
        agreement_id_for(f"{LICENSE}444455556666:license:l-a0000000000000000000000000000003"),
        agreement_id_for(f"{LICENSE}444455556666:license:l-a0000000000000000000000000000004"),
        agreement_id_for(f"{LICENSE}222233334444:license:l-c0000000000000000000000000000003"),
    ]
    assert ids(search(("AfterEndTime", "2026-01-01T00:00:00Z"))) == [ALICE_CA]
    assert ids(search(("BeforeEndTime", "2022-01-01"))) == [FRANK_LEGACY]
    assert ids(search(("AfterStartTime", "2090-01-01T00:00:00Z"))) == [
        ERIN_CA,
        agreement_id_for(f"{LICENSE}333344445555:license:l-e0000000000000000000000000000001"),
    ]


def test_search_sorts_by_end_time_with_open_ended_agreements_last() -> None:
    ascending = ids(search())
    assert ascending[:2] == [FRANK_LEGACY, ALICE_CA]
    descending = ids(search(sort={"sortBy": "EndTime", "sortOrder": "DESCENDING"}))
    assert descending == list(reversed(ascending))
    by_start = ids(search(sort={"sortBy": "StartTime", "sortOrder": "DESCENDING"}))
    assert by_start[:3] == [
        agreement_id_for(f"{LICENSE}333344445555:license:l-e0000000000000000000000000000001"),
        ERIN_CA,
        ALICE_CA,
    ]


def test_search_pages_continue_after_the_last_agreement_served() -> None:
    everything = ids(search())
    seen: list[str] = []
    token = None
    while True:
        more: dict[str, Any] = {"nextToken": token} if token else {}
        page = search(maxResults=4, **more)
        seen += ids(page)
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == everything
    error = refused(
        "search_agreements",
        {
            "filters": [*PROPOSER, {"name": "Status", "values": ["ACTIVE"]}],
            "nextToken": search(maxResults=4)["nextToken"],
        },
    )
    assert error.members() == {"reason": "INVALID_NEXT_TOKEN"}
    forged = base64.urlsafe_b64encode(b'{"b":"x","p":[0,"a",1]}').decode()
    assert refused("search_agreements", {"filters": PROPOSER, "nextToken": forged}).members() == {
        "reason": "INVALID_NEXT_TOKEN"
    }


@pytest.mark.parametrize(
    ("filters", "message", "reason"),
    [
        (
            [{"name": "PartyType", "values": ["Proposer"]}],
            "Provided combination of filters is not supported",
            "UNSUPPORTED_FILTERS",
        ),
        (
            [{"name": "AgreementType", "values": ["PurchaseAgreement"]}],
            "Provided combination of filters is not supported",
            "UNSUPPORTED_FILTERS",
        ),
        (
            [*PROPOSER, {"name": "ResourceId", "values": ["prod-x"]}],
            "Provided filter name is invalid",
            "INVALID_FILTER_NAME",
        ),
        (
            [*PROPOSER, {"name": "PartyType", "values": ["Proposer"]}],
            "Provided filter name is invalid",
            "INVALID_FILTER_NAME",
        ),
        (
            [{"name": "PartyType", "values": ["Seller"]}, PROPOSER[1]],
            "Provided filter values is invalid",
            "INVALID_FILTER_VALUES",
        ),
        (
            [*PROPOSER, {"name": "Status", "values": ["LIVE"]}],
            "Provided filter values is invalid",
            "INVALID_FILTER_VALUES",
        ),
        (
            [*PROPOSER, {"name": "BeforeEndTime", "values": ["yesterday"]}],
            "Provided filter values is invalid",
            "INVALID_FILTER_VALUES",
        ),
        (
            [
                *PROPOSER,
                {"name": "BeforeEndTime", "values": ["2020-01-01"]},
                {"name": "AfterEndTime", "values": ["2021-01-01"]},
            ],
            "Provided filter values is invalid",
            "INVALID_FILTER_VALUES",
        ),
        (
            [
                {"name": "PartyType", "values": ["Acceptor"]},
                PROPOSER[1],
                {"name": "AcceptorAccountId", "values": ["444455556666"]},
            ],
            "Provided combination of filters is not supported",
            "UNSUPPORTED_FILTERS",
        ),
    ],
)
def test_search_refuses_filters_as_aws_does(
    filters: list[dict[str, Any]], message: str, reason: str
) -> None:
    error = refused("search_agreements", {"filters": filters})
    assert isinstance(error, AgreementValidationException)
    assert (error.http_status, error.message, error.members()) == (400, message, {"reason": reason})


def test_search_refuses_another_catalog_a_sort_key_and_a_buyers_key() -> None:
    assert refused("search_agreements", {"filters": PROPOSER, "catalog": "Other"}).members() == {
        "reason": "INVALID_CATALOG"
    }
    acceptor = [{"name": "PartyType", "values": ["Acceptor"]}, PROPOSER[1]]
    error = refused("search_agreements", {"filters": acceptor, "sort": {"sortBy": "StartTime"}})
    assert (error.message, error.members()) == (
        "Provided sortBy is invalid",
        {"reason": "INVALID_SORT_BY"},
    )
    assert isinstance(
        refused("search_agreements", {"filters": PROPOSER}, BUYER), AgreementAccessDeniedException
    )
    assert call("search_agreements", {"filters": acceptor}) == {"agreementViewSummaries": []}


def test_an_unsubscribe_pending_agreement_is_cancelled_and_its_license_deprovisioned() -> None:
    snapshot = CatalogSnapshot(1, load_catalog_file(CATALOG))
    alice = snapshot.agreements_by_id[ALICE_CA]
    pending = dataclasses.replace(
        alice, state=AgreementState.UNSUBSCRIBE_PENDING, pending_since=NOW.timestamp() - 60
    )
    now = NOW.timestamp()
    assert agreement_status(pending, now) == "CANCELLED"
    assert entitlement_status(pending, now) == ("DEPROVISIONED", "AGREEMENT_INACTIVE")
    assert entitlement_status(alice, now) == ("PROVISIONED", "AGREEMENT_ACTIVE")


def test_subscribing_on_an_offer_follows_the_offers_product_and_buyers() -> None:
    snapshot = CatalogSnapshot(1, load_catalog_file(CATALOG))
    now = NOW.timestamp()

    def subscribe(product: str, buyer: str, offer: str) -> Any:
        return transitions.subscribe(
            snapshot, product, buyer, now, SequentialTokens(), SequentialIds(), False, offer
        )

    dave = "555566667777"
    with pytest.raises(Refusal) as private:
        subscribe("prod-ca", dave, "offer-testcontract1")
    assert (private.value.field, private.value.message) == (
        "offerId",
        "offer-testcontract1 is a private offer not extended to 555566667777",
    )
    with pytest.raises(Refusal) as other:
        subscribe("prod-legacy", dave, "offer-testpublic001")
    assert other.value.message == "offer-testpublic001 is an offer of prod-ca"
    made = subscribe("prod-ca", dave, "offer-testpublic001").agreement
    assert made.offer_id == "offer-testpublic001"
    assert subscribe("prod-ca", dave, "offer-elsewhere").agreement.offer_id == "offer-elsewhere"


def test_a_token_nested_past_the_parsers_depth_is_refused_not_a_crash() -> None:
    deep = base64.urlsafe_b64encode(b"[" * 6000).decode()
    error = refused("get_agreement_terms", {"agreementId": ALICE_CA, "nextToken": deep})
    assert error.members() == {"reason": "INVALID_NEXT_TOKEN"}


def test_durations_past_the_year_9999_show_no_date() -> None:
    assert add_duration(0.0, "P99999999Y") is None
    assert add_duration(0.0, "P1M") == 2678400.0
    assert add_duration(1580428800.0, "P1M") == 1582934400.0  # Jan 31 + 1 month: Feb 29


@pytest.mark.parametrize(
    ("pricing", "kinds"),
    [
        ("usage", ["legalTerm", "usageBasedPricingTerm"]),
        ("contract", ["legalTerm", "configurableUpfrontPricingTerm"]),
        (
            "contract-with-consumption",
            ["legalTerm", "configurableUpfrontPricingTerm", "usageBasedPricingTerm"],
        ),
    ],
)
def test_a_derived_offer_sells_as_the_product_is_priced(pricing: str, kinds: list[str]) -> None:
    """A contract's derived offer has the rate card its subscriptions are granted by
    (catalog.contracts.derived_upfront_term); only what is metered has a usage rate card."""
    product = Product(
        "prod-x",
        "111122223333",
        ProductKind.SAAS,
        ("seats", "gb"),
        pricing_model=PricingModel(pricing),
    )
    offer = derived_offer(product, Agreement(LICENSE + "l-1", "444455556666", "prod-x"))
    assert [term.key for term in offer.terms] == kinds
    if "configurableUpfrontPricingTerm" in kinds:
        assert json.loads(offer.terms[1].body) == derived_upfront_term(("seats", "gb"))
