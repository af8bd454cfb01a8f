"""What the rest of marketmeter may see of the lifecycle: its actions, channels, logged
events, planned subscriptions and transitions. A leaf: the store reads and writes these
without importing the lifecycle's rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from marketmeter.catalog.model import Agreement, Buyer, Catalog, NotificationKind
from marketmeter.metering.types import RegistrationToken

__all__ = ["Channel", "LifecycleAction", "LifecycleEvent", "Subscription", "Transition"]


class LifecycleAction(StrEnum):
    """What happened to an agreement: the event log's ``action``."""

    SUBSCRIBE_SUCCESS = "subscribe-success"
    SUBSCRIBE_FAIL = "subscribe-fail"
    UNSUBSCRIBE_PENDING = "unsubscribe-pending"
    UNSUBSCRIBE_SUCCESS = "unsubscribe-success"
    SUSPEND = "suspend"
    RESUBSCRIBE = "resubscribe"
    ENTITLEMENT_UPDATED = "entitlement-updated"
    AMEND = "amend"  # a concurrent agreement's quantities or end changed (then its license)
    EXPIRE = "expire"  # a contract's end date passed on the service clock
    DEPROVISION = "deprovision"  # the hour for final records after that end is over


class Channel(StrEnum):
    """How an event reaches the seller: SNS (legacy), EventBridge (concurrent agreements), or
    not at all (logged only)."""

    SNS = "sns"
    EVENTBRIDGE = "eventbridge"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One emitted message, as the event log keeps it. ``topic`` is the SNS TopicArn or the
    EventBridge detail-type; ``body`` the JSON POSTed to the product's webhooks;
    ``occurred_at`` epoch seconds on the service clock; ``seq`` the log's order (set once
    stored)."""

    event_id: str
    action: LifecycleAction
    product_code: str
    buyer_account_id: str
    license_arn: str | None
    channel: Channel
    topic: str
    occurred_at: float
    body: dict[str, Any]
    seq: int | None = None

    @property
    def kind(self) -> NotificationKind | None:
        """Which notification it is (what a delivery target subscribes to); ``None`` for an
        event delivered nowhere."""
        if self.channel is Channel.SNS:
            if self.action in (LifecycleAction.ENTITLEMENT_UPDATED, LifecycleAction.EXPIRE):
                return NotificationKind.ENTITLEMENT
            return NotificationKind.SUBSCRIPTION
        if self.channel is Channel.EVENTBRIDGE:
            return NotificationKind.AGREEMENT
        return None


@dataclass(frozen=True, slots=True)
class Subscription:
    buyer: Buyer
    agreement: Agreement
    token: RegistrationToken | None  # SaaS products only
    created_buyer: bool
    created_agreement: bool
    changes: Catalog  # what to upsert into the catalog


@dataclass(frozen=True, slots=True)
class Transition:
    """What a transition changes: upsert ``changes`` and issue ``tokens``, log ``events``."""

    action: LifecycleAction
    agreement: Agreement | None  # after the transition (None: subscribe-fail)
    changes: Catalog
    tokens: tuple[RegistrationToken, ...] = ()
    events: tuple[LifecycleEvent, ...] = ()
    subscription: Subscription | None = None  # subscribe only
