"""An agreement's Agreement API status, and its entitlement's, on the service clock.

marketmeter's lifecycle states map onto the model's ``AgreementStatus``: a subscribed agreement
is ``ACTIVE`` (also before a future start date, as AWS shows future-dated agreements) until its
end date, ``EXPIRED`` after it; one the buyer unsubscribed from (pending or done) is
``CANCELLED``; a suspended one (e.g. a failed payment) is ``TERMINATED``
(docs/agreement-api.md, "Statuses").
"""

from __future__ import annotations

from marketmeter.catalog.model import Agreement, AgreementState

__all__ = ["agreement_status", "entitlement_status"]


def agreement_status(agreement: Agreement, now: float) -> str:
    state = agreement.state
    if state is AgreementState.SUBSCRIBED:
        if agreement.ends_at is not None and now >= agreement.ends_at:
            return "EXPIRED"
        return "ACTIVE"
    if state is AgreementState.SUSPENDED:
        return "TERMINATED"
    return "CANCELLED"


def entitlement_status(agreement: Agreement, now: float) -> tuple[str, str]:
    """The agreement's entitlement: ``(status, statusReasonCode)``. Provisioned exactly while
    the Entitlement Service's GetEntitlements answers the agreement's entitlements (it is
    subscribed and started at ``now``, before its end: docs/entitlement-service.md); scheduled
    while subscribed before its start date; deprovisioned otherwise (unsubscribe-pending
    included: the license goes with the agreement's end, as GetEntitlements' entries do)."""
    subscribed = agreement.effective_state(now) is AgreementState.SUBSCRIBED
    if subscribed and agreement.covers(now):
        return "PROVISIONED", "AGREEMENT_ACTIVE"
    if subscribed and agreement.starts_at is not None and now < agreement.starts_at:
        return "SCHEDULED", "FUTURE_START_DATE"
    return "DEPROVISIONED", "AGREEMENT_INACTIVE"
