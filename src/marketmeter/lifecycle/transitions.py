"""The subscription lifecycle (docs/subscription-lifecycle.md): pure transitions of an
agreement and the messages they emit.

Each function takes a ``CatalogSnapshot`` and the service clock's ``now`` (epoch seconds) and
returns a ``Transition``: the catalog changes to upsert, the registration tokens to issue and
the ``LifecycleEvent``\\ s to log and deliver, all to be applied in one transaction
(``Store.commit_transition``). Nothing here does I/O; ids come from the injected
generator.

States and the transitions between them (the state an agreement has *at now*, see
``Agreement.effective_state``):

- ``subscribe``: a new agreement → ``subscribed`` (``subscribe-success``; an agreement that
  already bills is reused, with a fresh token and no message);
- ``subscribe_fail``: no agreement is made (``subscribe-fail``, e.g. no billing agreement);
- ``unsubscribe``: ``subscribed`` → ``unsubscribe-pending`` until now + the unsubscribe delay
  (``unsubscribe-pending``);
- ``complete_unsubscribe``: ``unsubscribe-pending`` whose end has come → ``unsubscribed``
  (``unsubscribe-success``), stamped with the end time;
- ``suspend``: ``subscribed`` or ``unsubscribe-pending`` → ``suspended``;
- ``resubscribe``: ``suspended``, ``unsubscribed`` or ``unsubscribe-pending`` → ``subscribed``
  (open-ended again);
- ``update_entitlement``: ``subscribed`` or ``unsubscribe-pending`` stays, its entitlements
  replaced (an upgrade, an amendment) and its end moved (a renewal), or a free trial turned
  into a paid agreement or back (``entitlement-updated``; a concurrent agreement whose
  entitlements or end changed is first ``Purchase Agreement Amended``).

Any other move is refused (``Refusal``) with a message naming the state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from marketmeter.catalog.model import (
    AcceptedConfiguration,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    CatalogSnapshot,
    Entitlement,
    Integration,
    customer_identifier_for,
    entitlement_problems,
)
from marketmeter.lifecycle.contract_grants import contract_grant
from marketmeter.lifecycle.messages import MessageSubject, lifecycle_event
from marketmeter.lifecycle.subscriptions import plan_subscription
from marketmeter.lifecycle.types import LifecycleAction, LifecycleEvent, Transition
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.registration_tokens import TokenGenerator
from marketmeter.refusal import Refusal

__all__ = [
    "complete_unsubscribe",
    "due_unsubscriptions",
    "find_agreement",
    "message_subject",
    "resubscribe",
    "subscribe",
    "subscribe_fail",
    "suspend",
    "unsubscribe",
    "update_entitlement",
]


def find_agreement(catalog: CatalogSnapshot, reference: str) -> Agreement:
    """The agreement with this agreement id or LicenseArn, else ``Refusal``."""
    agreement = catalog.agreement(reference)
    if agreement is None:
        raise Refusal.not_found("agreement", f"no agreement with id or LicenseArn {reference!r}")
    return agreement


def message_subject(
    catalog: CatalogSnapshot, agreement: Agreement, buyer: Buyer | None = None
) -> MessageSubject:
    product = catalog.products[agreement.product_code]
    buyer = buyer or catalog.buyers.get(agreement.buyer_account_id)
    return MessageSubject(
        product_code=product.product_code,
        seller_account_id=product.seller_account_id,
        buyer_account_id=agreement.buyer_account_id,
        customer_identifier=_identifier(buyer, agreement.buyer_account_id),
        concurrent_agreements=product.integration is Integration.CONCURRENT_AGREEMENTS,
        license_arn=agreement.license_arn,
        agreement_id=agreement.agreement_id,
        offer_id=agreement.offer_id,
        free_trial=agreement.free_trial,
        starts_at=agreement.starts_at,
        ends_at=agreement.ends_at,
        seller_name=_seller_name(catalog, product.seller_account_id),
        auto_renew=bool(agreement.configuration.auto_renew),
    )


def _seller_name(catalog: CatalogSnapshot, account_id: str) -> str:
    for seller in catalog.catalog.sellers:
        if seller.account_id == account_id:
            return seller.name
    return ""


def _identifier(buyer: Buyer | None, account_id: str) -> str:
    if buyer is not None and buyer.customer_identifier is not None:
        return buyer.customer_identifier
    return customer_identifier_for(account_id)


def _event(
    action: LifecycleAction,
    subject: MessageSubject,
    at: float,
    ids: IdGenerator,
    resumed_from_suspension: bool = False,
) -> LifecycleEvent:
    return lifecycle_event(action, subject, at, ids(), ids(), resumed_from_suspension)


def _changed(
    catalog: CatalogSnapshot,
    action: LifecycleAction,
    before: Agreement,
    after: Agreement,
    at: float,
    ids: IdGenerator,
) -> Transition:
    resumed = action is LifecycleAction.RESUBSCRIBE and before.state is AgreementState.SUSPENDED
    event = _event(action, message_subject(catalog, after), at, ids, resumed)
    return Transition(action, after, Catalog(agreements=(after,)), events=(event,))


def _refuse_state(agreement: Agreement, state: AgreementState, allowed: str) -> Refusal:
    return Refusal.conflict(
        "agreement", f"agreement {agreement.agreement_id} is {state.value}; {allowed}"
    )


def _refused(error: Refusal) -> Refusal:
    return Refusal(error.field, error.message, 404 if error.field == "product" else 400)


def subscribe(
    catalog: CatalogSnapshot,
    product_code: str,
    buyer_account_id: str,
    now: float,
    tokens: TokenGenerator,
    ids: IdGenerator,
    free_trial: bool = False,
    offer_id: str | None = None,
    configuration: AcceptedConfiguration | None = None,
) -> Transition:
    """Subscribe the buyer (``lifecycle.subscriptions``); a new agreement emits
    ``subscribe-success``. An unsubscribe-pending agreement must be resubscribed instead. A
    new agreement of a product sold by contract gets what ``configuration`` chose on its
    offer (``lifecycle.contract_grants``), and then also ``entitlement-updated``."""
    try:
        plan = plan_subscription(catalog, product_code, buyer_account_id, now, tokens, free_trial)
    except Refusal as error:
        raise _refused(error) from None
    refusal = catalog.offer_refusal(offer_id, product_code, buyer_account_id) if offer_id else None
    if refusal is not None:
        raise Refusal("offerId", refusal)
    product = catalog.products[product_code]
    chosen = configuration or AcceptedConfiguration()
    if not chosen.empty and not product.pricing_model.has_entitlements:
        raise Refusal(
            "configuration",
            f"product {product_code} is priced by usage (pricing_model: usage): "
            "no contract to configure",
        )
    agreement = plan.agreement
    if not plan.created_agreement:
        state = agreement.effective_state(now)
        if state is not AgreementState.SUBSCRIBED:
            raise _refuse_state(agreement, state, "resubscribe it instead")
        token = (plan.token,) if plan.token else ()
        return Transition(
            LifecycleAction.SUBSCRIBE_SUCCESS, agreement, plan.changes, token, (), plan
        )
    if offer_id is not None:
        agreement = replace(agreement, offer_id=offer_id)
    if product.pricing_model.has_entitlements:
        offer = catalog.offers.get(offer_id) if offer_id is not None else None
        start = agreement.starts_at if agreement.starts_at is not None else now
        grant = contract_grant(product, offer, chosen, start)
        if grant is not None:
            agreement = replace(
                agreement,
                configuration=grant.configuration,
                entitlements=grant.entitlements,
                ends_at=grant.ends_at,
            )
    if agreement is not plan.agreement:
        changes = replace(plan.changes, agreements=(agreement,))
        plan = replace(plan, agreement=agreement, changes=changes)
    subject = message_subject(catalog, agreement, plan.buyer)
    events = [_event(LifecycleAction.SUBSCRIBE_SUCCESS, subject, now, ids)]
    if agreement.entitlements:  # a new contract: what it grants is told as AWS tells it
        events.append(_event(LifecycleAction.ENTITLEMENT_UPDATED, subject, now, ids))
    return Transition(
        LifecycleAction.SUBSCRIBE_SUCCESS,
        agreement,
        plan.changes,
        (plan.token,) if plan.token else (),
        tuple(events),
        plan,
    )


def subscribe_fail(
    catalog: CatalogSnapshot,
    product_code: str,
    buyer_account_id: str,
    now: float,
    ids: IdGenerator,
    free_trial: bool = False,
    offer_id: str | None = None,
) -> Transition:
    """A subscription that failed (e.g. the buyer has no billing agreement): nothing is
    created, ``subscribe-fail`` is emitted. Refused if the buyer already has an agreement that
    bills now."""
    product = catalog.products.get(product_code)
    if product is None:
        raise Refusal.not_found("product", f"no product with product code {product_code!r}")
    try:
        plan_subscription(catalog, product_code, buyer_account_id, now, lambda: "", free_trial)
    except Refusal as error:
        raise _refused(error) from None
    active = catalog.entitlement(buyer_account_id, product_code, now)
    if active is not None:
        raise Refusal.conflict(
            "buyer",
            f"{buyer_account_id} is already subscribed to {product_code} "
            f"(agreement {active.agreement_id})",
        )
    subject = MessageSubject(
        product_code=product_code,
        seller_account_id=product.seller_account_id,
        buyer_account_id=buyer_account_id,
        customer_identifier=_identifier(catalog.buyers.get(buyer_account_id), buyer_account_id),
        concurrent_agreements=product.integration is Integration.CONCURRENT_AGREEMENTS,
        offer_id=offer_id,
        free_trial=free_trial,
        seller_name=_seller_name(catalog, product.seller_account_id),
    )
    event = _event(LifecycleAction.SUBSCRIBE_FAIL, subject, now, ids)
    return Transition(LifecycleAction.SUBSCRIBE_FAIL, None, Catalog(), events=(event,))


def unsubscribe(
    catalog: CatalogSnapshot, reference: str, now: float, delay: timedelta, ids: IdGenerator
) -> Transition:
    """``subscribed`` → ``unsubscribe-pending``, ending ``delay`` from now (or at its own end,
    if sooner)."""
    agreement = find_agreement(catalog, reference)
    state = agreement.effective_state(now)
    if state is not AgreementState.SUBSCRIBED:
        raise _refuse_state(agreement, state, "only a subscribed agreement can be unsubscribed")
    due = now + delay.total_seconds()
    ends_at = due if agreement.ends_at is None else min(agreement.ends_at, due)
    pending = replace(
        agreement,
        state=AgreementState.UNSUBSCRIBE_PENDING,
        pending_since=now,
        ends_at=ends_at,
    )
    return _changed(catalog, LifecycleAction.UNSUBSCRIBE_PENDING, agreement, pending, now, ids)


def due_unsubscriptions(catalog: CatalogSnapshot, now: float) -> list[Agreement]:
    """Unsubscribe-pending agreements whose end has come, by end time."""
    due = [
        agreement
        for agreement in catalog.catalog.agreements
        if agreement.state is AgreementState.UNSUBSCRIBE_PENDING
        and agreement.effective_state(now) is AgreementState.UNSUBSCRIBED
    ]
    return sorted(due, key=lambda agreement: (agreement.ends_at or 0.0, agreement.license_arn))


def complete_unsubscribe(
    catalog: CatalogSnapshot, reference: str, now: float, ids: IdGenerator
) -> Transition:
    """``unsubscribe-pending`` whose end has come → ``unsubscribed`` (``unsubscribe-success``,
    stamped with the end time)."""
    agreement = find_agreement(catalog, reference)
    if agreement.effective_state(now) is not AgreementState.UNSUBSCRIBED or (
        agreement.state is not AgreementState.UNSUBSCRIBE_PENDING
    ):
        raise _refuse_state(
            agreement,
            agreement.effective_state(now),
            "only an unsubscribe-pending agreement whose delay is over can complete",
        )
    ended = replace(agreement, state=AgreementState.UNSUBSCRIBED)
    at = agreement.ends_at if agreement.ends_at is not None else now
    return _changed(catalog, LifecycleAction.UNSUBSCRIBE_SUCCESS, agreement, ended, at, ids)


def suspend(catalog: CatalogSnapshot, reference: str, now: float, ids: IdGenerator) -> Transition:
    """``subscribed`` or ``unsubscribe-pending`` → ``suspended``: no usage is billed from now."""
    agreement = find_agreement(catalog, reference)
    state = agreement.effective_state(now)
    if state not in (AgreementState.SUBSCRIBED, AgreementState.UNSUBSCRIBE_PENDING):
        raise _refuse_state(
            agreement, state, "only a subscribed or unsubscribe-pending agreement can be suspended"
        )
    suspended = replace(agreement, state=AgreementState.SUSPENDED)
    return _changed(catalog, LifecycleAction.SUSPEND, agreement, suspended, now, ids)


_RESUBSCRIBABLE = (
    AgreementState.SUSPENDED,
    AgreementState.UNSUBSCRIBED,
    AgreementState.UNSUBSCRIBE_PENDING,
)


def resubscribe(
    catalog: CatalogSnapshot, reference: str, now: float, ids: IdGenerator
) -> Transition:
    """``suspended``, ``unsubscribed`` or ``unsubscribe-pending`` → ``subscribed``, open-ended
    again. Coming back from ``unsubscribed`` starts the agreement's period anew at ``now``:
    usage stamped in the gap, or before the unsubscription (refused since
    unsubscribe-success), stays unbillable. A buyer who re-subscribes while
    ``unsubscribe-pending`` gets ``subscribe-success`` and never ``unsubscribe-success``, as AWS
    documents (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-notification.html)."""
    agreement = find_agreement(catalog, reference)
    state = agreement.effective_state(now)
    if state not in _RESUBSCRIBABLE:
        raise _refuse_state(
            agreement,
            state,
            "only a suspended, unsubscribed or unsubscribe-pending agreement can be resubscribed",
        )
    starts_at = now if state is AgreementState.UNSUBSCRIBED else agreement.starts_at
    active = replace(
        agreement,
        state=AgreementState.SUBSCRIBED,
        pending_since=None,
        ends_at=None,
        starts_at=starts_at,
    )
    before = replace(agreement, state=state)
    return _changed(catalog, LifecycleAction.RESUBSCRIBE, before, active, now, ids)


def update_entitlement(
    catalog: CatalogSnapshot,
    reference: str,
    now: float,
    ids: IdGenerator,
    free_trial: bool | None = None,
    entitlements: tuple[Entitlement, ...] | None = None,
    ends_at: float | None = None,
) -> Transition:
    """The buyer's entitlement changed (``entitlement-updated``): ``entitlements`` replace the
    agreement's (each checked against its product, ``entitlement_problems``), ``ends_at``
    moves its end (after now), ``free_trial`` converts it to or from a free trial."""
    agreement = find_agreement(catalog, reference)
    state = agreement.effective_state(now)
    if state not in (AgreementState.SUBSCRIBED, AgreementState.UNSUBSCRIBE_PENDING):
        raise _refuse_state(
            agreement,
            state,
            "only a subscribed or unsubscribe-pending agreement has entitlements to update",
        )
    updated = agreement if free_trial is None else replace(agreement, free_trial=free_trial)
    if entitlements is not None:
        product = catalog.products.get(agreement.product_code)
        for index, problem in entitlement_problems(entitlements, product):
            raise Refusal("entitlements" if index is None else f"entitlements[{index}]", problem)
        updated = replace(updated, entitlements=entitlements)
    if ends_at is not None:
        if ends_at <= now or (agreement.starts_at is not None and ends_at <= agreement.starts_at):
            raise Refusal("endsAt", "must be after now and after the agreement's start")
        updated = replace(updated, ends_at=ends_at)
    done = _changed(catalog, LifecycleAction.ENTITLEMENT_UPDATED, agreement, updated, now, ids)
    amended = (updated.entitlements, updated.ends_at) != (agreement.entitlements, agreement.ends_at)
    product = catalog.products[agreement.product_code]
    if amended and product.integration is Integration.CONCURRENT_AGREEMENTS:
        # AWS amends the agreement (intent AMEND), then updates its license
        event = _event(LifecycleAction.AMEND, message_subject(catalog, updated), now, ids)
        done = replace(done, events=(event, *done.events))
    return done
