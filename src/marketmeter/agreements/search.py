"""SearchAgreements: the seller's (``Proposer``) and the buyer's (``Acceptor``) view of their
agreements, filtered, sorted and paged (docs/agreement-api.md, "SearchAgreements").

- Filters are ``{name, values}`` with one value each (the model bounds the list). Names are the
  model's documented ones; an unknown or repeated name is ``INVALID_FILTER_NAME``; a value a
  name does not take (a status outside the model's enum, a time that is not ISO-8601 or epoch
  seconds, an ``After`` later than its ``Before``) is ``INVALID_FILTER_VALUES``.
- ``PartyType`` and ``AgreementType`` are required (``UNSUPPORTED_FILTERS`` otherwise, AWS's
  answer when they are missing). ``Proposer`` takes any combination of the other names;
  ``Acceptor`` only AgreementType with Status, the end-time bounds, ResourceIdentifier,
  ResourceType, OfferId and OfferSetId.
- ``ResourceIdentifier`` is the product's entity id (``prod-...``); its product code is taken
  too. Time filters compare with the agreement's times; an agreement without the time does not
  match.
- Sort by ``EndTime`` (default), or for the proposer ``StartTime``/``LastUpdateTime``;
  ascending by default; agreements without the time come last ascending (first descending),
  then by agreement id. Pages continue after the last agreement served, by its sort key, so an
  agreement added or changed meanwhile does not shift the next page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketmeter.agreements.entitlements import RESOURCE_TYPES
from marketmeter.agreements.pages import (
    DEFAULT_PAGE_SIZE,
    INVALID_NEXT_TOKEN,
    binding_of,
    next_token,
    read_token,
)
from marketmeter.agreements.status import agreement_status
from marketmeter.agreements.terms import offer_of
from marketmeter.agreements.timing import parse_filter_time
from marketmeter.agreements.views import AGREEMENT_TYPE, last_update_time, summary
from marketmeter.catalog.model import Agreement, CatalogSnapshot, product_id_for
from marketmeter.errors import AgreementValidationException

__all__ = ["AGREEMENT_TYPES", "CATALOG", "FILTER_NAMES", "search_agreements"]

CATALOG = "AWSMarketplace"
AGREEMENT_TYPES = frozenset({"PurchaseAgreement", "VendorInsightsAgreement"})
STATUSES = frozenset(
    {
        "ACTIVE",
        "ARCHIVED",
        "CANCELLED",
        "EXPIRED",
        "RENEWED",
        "REPLACED",
        "ROLLED_BACK",
        "SUPERSEDED",
        "TERMINATED",
    }
)
_TIMES = {
    "BeforeEndTime": ("end", "before"),
    "AfterEndTime": ("end", "after"),
    "BeforeStartTime": ("start", "before"),
    "AfterStartTime": ("start", "after"),
    "BeforeLastUpdateTime": ("update", "before"),
    "AfterLastUpdateTime": ("update", "after"),
}
FILTER_NAMES = frozenset(
    {
        "ResourceIdentifier",
        "ResourceType",
        "PartyType",
        "AcceptorAccountId",
        "OfferId",
        "Status",
        "AgreementType",
        "OfferSetId",
        "EndTimeBehaviorType",
        "EndTimeBehaviorReasonCode",
        "InitialAgreementId",
        "LicenseArn",
        "IncludesContactOfType",
        *_TIMES,
    }
)
ACCEPTOR_FILTERS = frozenset(
    {
        "PartyType",
        "AgreementType",
        "Status",
        "BeforeEndTime",
        "AfterEndTime",
        "ResourceIdentifier",
        "ResourceType",
        "OfferId",
        "OfferSetId",
    }
)
SORT_KEYS = {"Proposer": ("EndTime", "StartTime", "LastUpdateTime"), "Acceptor": ("EndTime",)}

INVALID_FILTER_NAME = "Provided filter name is invalid"
INVALID_FILTER_VALUES = "Provided filter values is invalid"
UNSUPPORTED_FILTERS = "Provided combination of filters is not supported"


def _refuse(message: str, reason: str) -> AgreementValidationException:
    return AgreementValidationException(message, reason)


def _filters(params: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in params.get("filters") or []:
        name, values = entry.get("name"), entry.get("values")
        if name is None:
            raise _refuse("Provided filter name is missing", "MISSING_FILTER_NAME")
        if not values:
            raise _refuse("Provided filter values are missing", "MISSING_FILTER_VALUES")
        if name not in FILTER_NAMES or name in found:
            raise _refuse(INVALID_FILTER_NAME, "INVALID_FILTER_NAME")
        found[name] = values[0]
    if "PartyType" not in found or "AgreementType" not in found:
        raise _refuse(UNSUPPORTED_FILTERS, "UNSUPPORTED_FILTERS")
    if found["PartyType"] not in SORT_KEYS or found["AgreementType"] not in AGREEMENT_TYPES:
        raise _refuse(INVALID_FILTER_VALUES, "INVALID_FILTER_VALUES")
    if found["PartyType"] == "Acceptor" and not set(found) <= ACCEPTOR_FILTERS:
        raise _refuse(UNSUPPORTED_FILTERS, "UNSUPPORTED_FILTERS")
    if "Status" in found and found["Status"] not in STATUSES:
        raise _refuse(INVALID_FILTER_VALUES, "INVALID_FILTER_VALUES")
    return found


def _time_bounds(filters: dict[str, str]) -> dict[str, tuple[float | None, float | None]]:
    """Per time (end, start, update): (after, before) bounds."""
    bounds: dict[str, list[float | None]] = {}
    for name, (which, side) in _TIMES.items():
        if name not in filters:
            continue
        moment = parse_filter_time(filters[name])
        if moment is None:
            raise _refuse(INVALID_FILTER_VALUES, "INVALID_FILTER_VALUES")
        bounds.setdefault(which, [None, None])[0 if side == "after" else 1] = moment
    for after, before in bounds.values():
        if after is not None and before is not None and after > before:
            raise _refuse(INVALID_FILTER_VALUES, "INVALID_FILTER_VALUES")
    return {which: (pair[0], pair[1]) for which, pair in bounds.items()}


def _times(agreement: Agreement) -> dict[str, float | None]:
    return {
        "end": agreement.ends_at,
        "start": agreement.starts_at,
        "update": last_update_time(agreement),
    }


def _matcher(
    snapshot: CatalogSnapshot, filters: dict[str, str], now: float
) -> Callable[[Agreement, dict[str, Any]], bool]:
    bounds = _time_bounds(filters)

    def matches(agreement: Agreement, view: dict[str, Any]) -> bool:
        product = snapshot.products[agreement.product_code]
        checks: dict[str, Callable[[str], bool]] = {
            "ResourceIdentifier": lambda v: (
                v in (product_id_for(product.product_code), product.product_code)
            ),
            "ResourceType": lambda v: v == RESOURCE_TYPES[product.kind],
            "AcceptorAccountId": lambda v: v == agreement.buyer_account_id,
            "OfferId": lambda v: v == offer_of(snapshot, agreement).offer_id,
            "Status": lambda v: v == agreement_status(agreement, now),
            "AgreementType": lambda v: v == AGREEMENT_TYPE,
            "OfferSetId": lambda v: False,  # marketmeter's offers belong to no offer set
            "EndTimeBehaviorType": lambda v: v == view.get("endTimeBehaviorType"),
            "EndTimeBehaviorReasonCode": lambda v: v == view.get("endTimeBehaviorReasonCode"),
            "InitialAgreementId": lambda v: v == agreement.agreement_id,
            "LicenseArn": lambda v: v == agreement.license_arn,
            "IncludesContactOfType": lambda v: False,  # no acceptor contacts are kept
        }
        for name, value in filters.items():
            check = checks.get(name)
            if check is not None and not check(value):
                return False
        times = _times(agreement)
        for which, (after, before) in bounds.items():
            moment = times[which]
            if moment is None:
                return False
            if after is not None and moment <= after:
                return False
            if before is not None and moment >= before:
                return False
        return True

    return matches


_SORT_TIME = {"EndTime": "end", "StartTime": "start", "LastUpdateTime": "update"}


def _sort_key(agreement: Agreement, sort_by: str) -> list[Any]:
    moment = _times(agreement)[_SORT_TIME[sort_by]]
    return (
        [1, 0.0, agreement.agreement_id] if moment is None else [0, moment, agreement.agreement_id]
    )


def _is_sort_key(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and value[0] in (0, 1)
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
        and isinstance(value[2], str)
    )


def search_agreements(
    snapshot: CatalogSnapshot,
    params: dict[str, Any],
    visible: Callable[[Agreement, str], bool],
    now: float,
) -> dict[str, Any]:
    """SearchAgreements' output members; ``visible(agreement, party_type)`` says whether the
    caller is that party of the agreement."""
    catalog = params.get("catalog")
    if catalog is not None and catalog != CATALOG:
        raise _refuse("Provided catalog is invalid", "INVALID_CATALOG")
    filters = _filters(params)
    party = filters["PartyType"]
    sort = params.get("sort") or {}
    sort_by = sort.get("sortBy", "EndTime")
    if sort_by not in SORT_KEYS[party]:
        raise _refuse("Provided sortBy is invalid", "INVALID_SORT_BY")
    descending = sort.get("sortOrder") == "DESCENDING"
    binding = binding_of(catalog, filters, sort_by, descending)
    after = read_token(params.get("nextToken"), binding)
    if after is not None and not _is_sort_key(after):
        raise _refuse(INVALID_NEXT_TOKEN, "INVALID_NEXT_TOKEN")
    matches = _matcher(snapshot, filters, now)
    found = []
    for agreement in snapshot.catalog.agreements:
        if agreement.product_code not in snapshot.products or not visible(agreement, party):
            continue
        view = summary(snapshot, agreement, now)
        if matches(agreement, view):
            found.append((_sort_key(agreement, sort_by), view))
    found.sort(key=lambda pair: pair[0], reverse=descending)
    if after is not None:
        found = [pair for pair in found if (pair[0] < after if descending else pair[0] > after)]
    size = params.get("maxResults") or DEFAULT_PAGE_SIZE
    page = found[:size]
    output: dict[str, Any] = {"agreementViewSummaries": [view for _, view in page]}
    if len(found) > size:
        output["nextToken"] = next_token(binding, page[-1][0])
    return output
