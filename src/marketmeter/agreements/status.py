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
    """The agreement's entitlement: ``(status, statusReasonCode)``: scheduled before its
    start date, provisioned while the buyer may use the product (metering's rule,
    ``Agreement.bills_at``: through an unsubscribe's final hour, when the license is
    deprovisioned), deprovisioned after."""
    if not agreement.bills_at(now) or (agreement.ends_at is not None and now >= agreement.ends_at):
        return "DEPROVISIONED", "AGREEMENT_INACTIVE"
    if agreement.starts_at is not None and now < agreement.starts_at:
        return "SCHEDULED", "FUTURE_START_DATE"
    return "PROVISIONED", "AGREEMENT_ACTIVE"
