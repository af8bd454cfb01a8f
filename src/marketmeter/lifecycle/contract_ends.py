"""A contract's end on the service clock, and what AWS Marketplace tells the seller then
(docs/subscription-lifecycle.md, "A contract's end").

A subscribed agreement with an end date stops granting its entitlements at that end (the
Entitlement Service answers none, the Agreement API says ``EXPIRED``, usage stamped from then
on is not billed; usage stamped before it still is, within BatchMeterUsage's time window). Two
instants of each such agreement are announced once the clock passes them:

- its end (``expire``): ``entitlement-updated`` on the entitlement topic (legacy products: AWS
  sends it when a contract "expires",
  https://docs.aws.amazon.com/marketplace/latest/userguide/saas-notification.html), or
  ``Purchase Agreement Ended - Proposer`` with status ``EXPIRED`` (concurrent agreements);
- the end plus the unsubscribe delay (``deprovision``, concurrent agreements only):
  ``License Deprovisioned - Manufacturer``, which ends the hour AWS leaves for final records
  (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html).

Nothing here changes an agreement: the events are the whole transition. Their ids derive from
the agreement, the instant and the kind (``instant_event_ids``), so announcing one twice (two
nodes, a restart that looks back) logs it once: the event log keeps one row per id.
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass
from datetime import timedelta

from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    Catalog,
    CatalogSnapshot,
    Integration,
)
from marketmeter.lifecycle.messages import lifecycle_event
from marketmeter.lifecycle.transitions import message_subject
from marketmeter.lifecycle.types import LifecycleAction, LifecycleEvent, Transition

__all__ = ["ContractEnds", "announce_contract_ends", "instant_event_ids"]

_NAMESPACE = uuid.UUID("5b0f3c2e-8d7a-4f41-9a53-6c1d2e7f9b80")


def instant_event_ids(action: LifecycleAction, license_arn: str, at: float) -> tuple[str, str]:
    """The event id and the EventBridge requestId of ``action``'s event for the agreement
    ``license_arn`` at instant ``at``: the same every time they are asked for."""
    name = f"{action.value}|{license_arn}|{at!r}"
    return str(uuid.uuid5(_NAMESPACE, name)), str(uuid.uuid5(_NAMESPACE, name + "|request"))


@dataclass(frozen=True, slots=True)
class _Instant:
    at: float
    action: LifecycleAction
    agreement: Agreement


class ContractEnds:
    """The instants to announce of one catalog, in time order (built once per catalog: a
    ticker asks every quarter second, and a catalog may hold 20,000 agreements)."""

    def __init__(self, catalog: CatalogSnapshot, delay: timedelta) -> None:
        self.catalog = catalog
        instants: list[_Instant] = []
        for agreement in catalog.catalog.agreements:
            end = agreement.ends_at
            if agreement.state is not AgreementState.SUBSCRIBED or end is None:
                continue
            instants.append(_Instant(end, LifecycleAction.EXPIRE, agreement))
            product = catalog.products.get(agreement.product_code)
            if product is not None and product.integration is Integration.CONCURRENT_AGREEMENTS:
                deprovision = end + delay.total_seconds()
                instants.append(_Instant(deprovision, LifecycleAction.DEPROVISION, agreement))
        instants.sort(key=lambda i: (i.at, i.agreement.license_arn, i.action.value))
        self._instants = instants
        self._times = [instant.at for instant in instants]

    def due(self, since: float, until: float) -> list[_Instant]:
        """The instants after ``since`` up to ``until`` (inclusive), in time order."""
        start = bisect.bisect_right(self._times, since)
        stop = bisect.bisect_right(self._times, until)
        return self._instants[start:stop]


def announce_contract_ends(
    catalog: CatalogSnapshot, since: float, until: float, delay: timedelta
) -> Transition:
    """The events of every contract end (and deprovisioning) the clock passed after ``since``
    up to ``until``, each stamped with its own instant; no agreement changes."""
    events: list[LifecycleEvent] = []
    for instant in ContractEnds(catalog, delay).due(since, until):
        agreement = instant.agreement
        event_id, request_id = instant_event_ids(instant.action, agreement.license_arn, instant.at)
        subject = message_subject(catalog, agreement)
        events.append(lifecycle_event(instant.action, subject, instant.at, event_id, request_id))
    return Transition(LifecycleAction.EXPIRE, None, Catalog(), events=tuple(events))
