"""An agreement as DescribeAgreement and SearchAgreements show it (docs/agreement-api.md).

``acceptor`` is the buyer, ``proposer`` the product's seller (marketmeter has no channel
partners), one resource per agreement: the product's entity id (``catalog.model.product_id_for``)
and type. The acceptance time is the start (marketmeter keeps no signature time apart from it);
``initialAgreementId`` the agreement's own id (marketmeter's renewals keep the agreement).
``endTimeBehavior`` only for an active agreement with an end date: ``RENEW`` when its renewal
term is on, else ``EXPIRE`` (``NO_RENEWAL_TERM`` or ``ACCEPTOR_RENEW_OPTED_OUT``).
"""

from __future__ import annotations

from typing import Any

from marketmeter.agreements.entitlements import resource_of
from marketmeter.agreements.status import agreement_status
from marketmeter.agreements.terms import (
    accepted_terms,
    estimated_charges,
    free_trial_end,
    offer_of,
    term_of,
)
from marketmeter.agreements.timing import wire_time
from marketmeter.catalog.model import Agreement, CatalogSnapshot

__all__ = ["AGREEMENT_TYPE", "describe", "last_update_time", "summary"]

AGREEMENT_TYPE = "PurchaseAgreement"


def last_update_time(agreement: Agreement) -> float | None:
    """When the agreement last changed, as far as marketmeter knows: its unsubscribe, else its
    start."""
    return agreement.pending_since if agreement.pending_since is not None else agreement.starts_at


def _end_behavior(
    terms: list[dict[str, Any]], agreement: Agreement, status: str
) -> dict[str, str] | None:
    if status != "ACTIVE" or agreement.ends_at is None:
        return None
    renewal = term_of(terms, "renewalTerm")
    if renewal is None:
        return {"type": "EXPIRE", "reasonCode": "NO_RENEWAL_TERM"}
    if renewal["configuration"]["enableAutoRenew"]:
        return {"type": "RENEW"}
    return {"type": "EXPIRE", "reasonCode": "ACCEPTOR_RENEW_OPTED_OUT"}


def _common(snapshot: CatalogSnapshot, agreement: Agreement, now: float) -> dict[str, Any]:
    product = snapshot.products[agreement.product_code]
    offer = offer_of(snapshot, agreement)
    terms = accepted_terms(offer, agreement)
    status = agreement_status(agreement, now)
    view: dict[str, Any] = {"agreementId": agreement.agreement_id}
    if agreement.starts_at is not None:
        view["acceptanceTime"] = wire_time(agreement.starts_at)
        view["startTime"] = wire_time(agreement.starts_at)
    if agreement.ends_at is not None:
        view["endTime"] = wire_time(agreement.ends_at)
    view["agreementType"] = AGREEMENT_TYPE
    view["acceptor"] = {"accountId": agreement.buyer_account_id}
    view["proposer"] = {"accountId": product.seller_account_id}
    view["proposalSummary"] = {"resources": [resource_of(product)], "offerId": offer.offer_id}
    view["status"] = status
    view["initialAgreementId"] = agreement.agreement_id
    view["_terms"] = terms
    view["_end"] = _end_behavior(terms, agreement, status)
    view["_trial"] = free_trial_end(terms, agreement)
    return view


def describe(snapshot: CatalogSnapshot, agreement: Agreement, now: float) -> dict[str, Any]:
    """DescribeAgreement's output members."""
    view = _common(snapshot, agreement, now)
    terms, end, trial = view.pop("_terms"), view.pop("_end"), view.pop("_trial")
    ordered = {
        "agreementId": view["agreementId"],
        "acceptor": view["acceptor"],
        "proposer": view["proposer"],
    }
    for key in ("startTime", "endTime", "acceptanceTime"):
        if key in view:
            ordered[key] = view[key]
    ordered["agreementType"] = view["agreementType"]
    ordered["estimatedCharges"] = estimated_charges(terms)
    ordered["proposalSummary"] = view["proposalSummary"]
    ordered["status"] = view["status"]
    ordered["initialAgreementId"] = view["initialAgreementId"]
    if end is not None:
        ordered["endTimeBehavior"] = end
    if trial is not None:
        ordered["freeTrialSummary"] = {"trialEndTime": wire_time(trial)}
    return ordered


def summary(snapshot: CatalogSnapshot, agreement: Agreement, now: float) -> dict[str, Any]:
    """An ``AgreementViewSummary`` (SearchAgreements), with its entitlement's LicenseArn."""
    view = _common(snapshot, agreement, now)
    view.pop("_terms")
    end, trial = view.pop("_end"), view.pop("_trial")
    updated = last_update_time(agreement)
    if updated is not None:
        view["lastUpdateTime"] = wire_time(updated)
    view["entitlements"] = [{"licenseArn": agreement.license_arn}]
    if end is not None:
        view["endTimeBehaviorType"] = end["type"]
        if "reasonCode" in end:
            view["endTimeBehaviorReasonCode"] = end["reasonCode"]
    if trial is not None:
        view["freeTrialEndTime"] = wire_time(trial)
    return view
