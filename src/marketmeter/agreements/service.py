"""The Agreement API's operations a seller calls, over one store and clock
(docs/agreement-api.md): DescribeAgreement, GetAgreementTerms, SearchAgreements,
GetAgreementEntitlements, GetAgreementContacts.

Each takes the request's members as the model names them (validated against the model before
they get here) and the ``Caller``, and answers the output's members. Who may read what:

- an agreement id that names no agreement → ``ResourceNotFoundException`` (404);
- a buyer's key → ``AccessDeniedException`` (403): marketmeter serves the seller's side;
- a seller's key on another seller's agreement → ``AccessDeniedException`` (403);
- open auth (no key mapped to an account) reads every agreement.
SearchAgreements as ``Proposer`` lists the caller's products' agreements; as ``Acceptor`` a
seller is party to none.
"""

from __future__ import annotations

from typing import Any

from marketmeter.agreements.entitlements import agreement_entitlements
from marketmeter.agreements.pages import binding_of, page_by_offset
from marketmeter.agreements.search import search_agreements
from marketmeter.agreements.terms import accepted_terms, offer_of
from marketmeter.agreements.views import describe
from marketmeter.catalog.model import Agreement, CatalogSnapshot
from marketmeter.errors import AgreementAccessDeniedException, ResourceNotFoundException
from marketmeter.metering.clock import Clock
from marketmeter.metering.types import Caller
from marketmeter.store.base import Store

__all__ = ["AgreementApi"]


def _denied(caller: Caller, operation: str, resource: str) -> AgreementAccessDeniedException:
    return AgreementAccessDeniedException(
        f"User: arn:aws:iam::{caller.account_id}:root is not authorized to perform: "
        f"aws-marketplace:{operation} on resource: {resource}"
    )


class AgreementApi:
    """The operations, wired to the store (its catalog snapshot) and the service clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def _agreement(
        self, params: dict[str, Any], caller: Caller, operation: str
    ) -> tuple[CatalogSnapshot, Agreement]:
        snapshot = await self._store.catalog_snapshot()
        agreement_id = str(params["agreementId"])
        agreement = snapshot.agreements_by_id.get(agreement_id)
        if agreement is None or agreement.product_code not in snapshot.products:
            raise ResourceNotFoundException(
                f"Agreement {agreement_id} not found", agreement_id, "Agreement"
            )
        product = snapshot.products[agreement.product_code]
        if caller.kind == "buyer" or (
            caller.kind == "seller" and product.seller_account_id != caller.account_id
        ):
            raise _denied(caller, operation, f"agreement {agreement_id}")
        return snapshot, agreement

    async def product_of(self, agreement_id: str) -> str | None:
        """The product code of the agreement ``agreement_id`` names, if any (the journal's)."""
        agreement = (await self._store.catalog_snapshot()).agreements_by_id.get(agreement_id)
        return agreement.product_code if agreement is not None else None

    async def describe_agreement(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        snapshot, agreement = await self._agreement(params, caller, "DescribeAgreement")
        return describe(snapshot, agreement, self._now())

    async def get_agreement_terms(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        snapshot, agreement = await self._agreement(params, caller, "GetAgreementTerms")
        terms = accepted_terms(offer_of(snapshot, agreement), agreement)
        page, token = page_by_offset(
            terms,
            params.get("maxResults"),
            params.get("nextToken"),
            binding_of("GetAgreementTerms", agreement.agreement_id),
        )
        output: dict[str, Any] = {"acceptedTerms": page}
        if token is not None:
            output["nextToken"] = token
        return output

    async def get_agreement_entitlements(
        self, params: dict[str, Any], caller: Caller
    ) -> dict[str, Any]:
        snapshot, agreement = await self._agreement(params, caller, "GetAgreementEntitlements")
        product = snapshot.products[agreement.product_code]
        entitlements = agreement_entitlements(product, agreement, self._now())
        page, token = page_by_offset(
            entitlements,
            params.get("maxResults"),
            params.get("nextToken"),
            binding_of("GetAgreementEntitlements", agreement.agreement_id),
        )
        output: dict[str, Any] = {"agreementEntitlements": page}
        if token is not None:
            output["nextToken"] = token
        return output

    async def get_agreement_contacts(
        self, params: dict[str, Any], caller: Caller
    ) -> dict[str, Any]:
        """No acceptor contact is kept: AWS then answers without ``acceptorContact``."""
        await self._agreement(params, caller, "GetAgreementContacts")
        return {}

    async def search_agreements(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        if caller.kind == "buyer":
            raise _denied(caller, "SearchAgreements", "agreements")
        snapshot = await self._store.catalog_snapshot()

        def visible(agreement: Agreement, party: str) -> bool:
            if caller.kind == "anonymous":
                return True
            if party == "Acceptor":
                return agreement.buyer_account_id == caller.account_id
            product = snapshot.products[agreement.product_code]
            return product.seller_account_id == caller.account_id

        return search_agreements(snapshot, params, visible, self._now())
