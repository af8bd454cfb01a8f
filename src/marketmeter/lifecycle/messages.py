"""The messages AWS Marketplace sends on subscription changes, as marketmeter emits them.

- Legacy products: the SNS notification exactly as an SQS queue subscribed to the topic
  receives it (raw delivery off): an envelope (``Type``, ``MessageId``, ``TopicArn``,
  ``Message``, ``Timestamp``, ``SignatureVersion``, ``Signature``, ``SigningCertURL``,
  ``UnsubscribeURL``) whose ``Message`` is the JSON *string* of ``action``,
  ``customer-identifier``, ``product-code``, ``offer-identifier`` (subscribe messages: AWS
  sends it for every offer created since January 2024,
  https://docs.aws.amazon.com/marketplace/latest/userguide/saas-notification.html; the
  subscription's offer, else the product's public offer, as the EventBridge events name it)
  and ``isFreeTrialTermPresent`` (``"true"``/``"false"``). Subscription changes
  go to topic ``aws-mp-subscription-notification-<productCode>``, entitlement changes
  (``entitlement-updated``) to ``aws-mp-entitlement-notification-<productCode>``.
- Concurrent-agreements products: the EventBridge event of source
  ``aws.agreement-marketplace`` (``version``, ``id``, ``detail-type``, ``source``, ``account``,
  ``time``, ``region``, ``resources``, ``detail``) laid out as AWS's seller guide prints them
  (https://docs.aws.amazon.com/marketplace/latest/userguide/notifications-eventbridge.html):
  ``resources`` ``["arn:aws:aws-marketplace::aws:agreement:<agmt-id>"]``; agreement events as
  ``- Proposer`` (a marketmeter seller is the ISV and the offer's proposer, and AWS then sends
  only the Proposer agreement event,
  https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html),
  license events as ``- Manufacturer``. Created: ``agreement {id, intent, status,
  acceptanceTime, startTime, endTime?}``; Amended (a concurrent agreement's quantities or end
  changed): the same with intent ``AMEND`` and ``autoRenewalEnabled``; Ended: ``agreement {id,
  status}`` (``CANCELLED`` by
  the buyer, ``EXPIRED`` at the contract's end date); License Updated /
  Deprovisioned: ``agreement {id}``, ``product {code, id}``, ``license {arn}``; all with
  ``acceptor``, ``proposer`` (Created: with the seller's ``name`` when the catalog has one) and
  ``offer``. Every agreement comes from an offer, so every event names one: the subscription's,
  else the product's public offer (``public_offer_id``: ``offer-`` and 13 characters derived
  from the product code).

AWS documents no message for a suspension or a resumption; marketmeter's choice
(``SNS_ACTIONS``, ``DETAIL_TYPES``): a suspension ends access at once, so it is told as
``unsubscribe-success`` / ``License Deprovisioned - Manufacturer``; a resubscription grants it
again, ``subscribe-success`` / ``Purchase Agreement Created - Proposer`` (``License Updated -
Manufacturer`` when a suspended agreement resumes). A failed subscription of a
concurrent-agreements product creates no agreement and AWS sends no event: it is logged with
channel ``none`` and delivered nowhere. The SNS ``Signature`` is a stand-in (marketmeter does
not hold AWS's signing key): sellers' tests must not verify it against AWS's certificate.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from marketmeter import __version__
from marketmeter.catalog.model import product_id_for
from marketmeter.lifecycle.types import Channel, LifecycleAction, LifecycleEvent

__all__ = [
    "AWS_MARKETPLACE_SNS_ACCOUNT",
    "DETAIL_TYPES",
    "EVENTBRIDGE_SOURCE",
    "NOTIFICATION_REGION",
    "SNS_ACTIONS",
    "MessageSubject",
    "delivery_headers",
    "entitlement_topic_arn",
    "eventbridge_event",
    "lifecycle_event",
    "public_offer_id",
    "sns_envelope",
    "sns_message",
    "subscription_arn",
    "subscription_topic_arn",
]

AWS_MARKETPLACE_SNS_ACCOUNT = "287250355862"
NOTIFICATION_REGION = "us-east-1"
EVENTBRIDGE_SOURCE = "aws.agreement-marketplace"
_SIGNING_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-marketmeter.pem"


# The SNS message's ``action`` for each transition of a legacy product.
SNS_ACTIONS: dict[LifecycleAction, str] = {
    LifecycleAction.SUBSCRIBE_SUCCESS: "subscribe-success",
    LifecycleAction.SUBSCRIBE_FAIL: "subscribe-fail",
    LifecycleAction.UNSUBSCRIBE_PENDING: "unsubscribe-pending",
    LifecycleAction.UNSUBSCRIBE_SUCCESS: "unsubscribe-success",
    LifecycleAction.SUSPEND: "unsubscribe-success",
    LifecycleAction.RESUBSCRIBE: "subscribe-success",
    LifecycleAction.ENTITLEMENT_UPDATED: "entitlement-updated",
    LifecycleAction.EXPIRE: "entitlement-updated",
}

_CREATED = "Purchase Agreement Created - Proposer"
_AMENDED = "Purchase Agreement Amended - Proposer"
_ENDED = "Purchase Agreement Ended - Proposer"
_LICENSE_UPDATED = "License Updated - Manufacturer"
_LICENSE_DEPROVISIONED = "License Deprovisioned - Manufacturer"

# The EventBridge detail-type for each transition of a concurrent-agreements product (None: no
# event). A resumption from ``suspended`` is ``License Updated - Manufacturer`` instead.
DETAIL_TYPES: dict[LifecycleAction, str | None] = {
    LifecycleAction.SUBSCRIBE_SUCCESS: _CREATED,
    LifecycleAction.SUBSCRIBE_FAIL: None,
    LifecycleAction.UNSUBSCRIBE_PENDING: _ENDED,
    LifecycleAction.UNSUBSCRIBE_SUCCESS: _LICENSE_DEPROVISIONED,
    LifecycleAction.SUSPEND: _LICENSE_DEPROVISIONED,
    LifecycleAction.RESUBSCRIBE: _CREATED,
    LifecycleAction.ENTITLEMENT_UPDATED: _LICENSE_UPDATED,
    LifecycleAction.AMEND: _AMENDED,
    LifecycleAction.EXPIRE: _ENDED,
    LifecycleAction.DEPROVISION: _LICENSE_DEPROVISIONED,
}
_SUBSCRIBE_ACTIONS = ("subscribe-success", "subscribe-fail")


@dataclass(frozen=True, slots=True)
class MessageSubject:
    """Who and what a message is about (what every shape draws its fields from)."""

    product_code: str
    seller_account_id: str
    buyer_account_id: str
    customer_identifier: str
    concurrent_agreements: bool
    license_arn: str | None = None
    agreement_id: str | None = None
    offer_id: str | None = None
    free_trial: bool = False
    starts_at: float | None = None
    ends_at: float | None = None
    seller_name: str = ""
    auto_renew: bool = False


def public_offer_id(product_code: str) -> str:
    """The id of a product's public offer, derived from its code (same code, same id): what an
    event names when the subscription named no offer of its own."""
    digest = int.from_bytes(hashlib.sha256(f"offer|{product_code}".encode()).digest())
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    characters = []
    for _ in range(13):
        digest, index = divmod(digest, 36)
        characters.append(alphabet[index])
    return "offer-" + "".join(characters)


def subscription_topic_arn(product_code: str) -> str:
    return (
        f"arn:aws:sns:{NOTIFICATION_REGION}:{AWS_MARKETPLACE_SNS_ACCOUNT}:"
        f"aws-mp-subscription-notification-{product_code}"
    )


def entitlement_topic_arn(product_code: str) -> str:
    return (
        f"arn:aws:sns:{NOTIFICATION_REGION}:{AWS_MARKETPLACE_SNS_ACCOUNT}:"
        f"aws-mp-entitlement-notification-{product_code}"
    )


def _sns_time(at: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event_time(at: float) -> str:
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sns_message(action: str, subject: MessageSubject) -> dict[str, str]:
    """The inner message (what ``Message`` holds as a JSON string)."""
    message = {
        "action": action,
        "customer-identifier": subject.customer_identifier,
        "product-code": subject.product_code,
    }
    if action == "entitlement-updated":
        return message
    if action in _SUBSCRIBE_ACTIONS:  # every offer since January 2024 (module docstring)
        message["offer-identifier"] = subject.offer_id or public_offer_id(subject.product_code)
    message["isFreeTrialTermPresent"] = "true" if subject.free_trial else "false"
    return message


def _subscription_arn(topic_arn: str) -> str:
    digest = hashlib.sha256(f"subscription|{topic_arn}".encode()).hexdigest()
    return (
        f"{topic_arn}:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    )


def subscription_arn(topic_arn: str) -> str:
    """The SubscriptionArn of marketmeter's subscription to ``topic_arn`` (the same for every
    endpoint of it)."""
    return _subscription_arn(topic_arn)


def sns_envelope(
    topic_arn: str, message: dict[str, str], message_id: str, at: float
) -> dict[str, str]:
    """The SNS notification as an SQS subscriber receives it (keys in AWS's order)."""
    text = orjson.dumps(message).decode()
    timestamp = _sns_time(at)
    string_to_sign = (
        f"Message\n{text}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\n"
        f"TopicArn\n{topic_arn}\nType\nNotification\n"
    )
    signature = base64.b64encode(hashlib.sha256(string_to_sign.encode()).digest()).decode()
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": text,
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": signature,
        "SigningCertURL": _SIGNING_CERT_URL,
        "UnsubscribeURL": (
            f"https://sns.{NOTIFICATION_REGION}.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={_subscription_arn(topic_arn)}"
        ),
    }


def eventbridge_event(
    detail_type: str,
    subject: MessageSubject,
    event_id: str,
    request_id: str,
    at: float,
    ended_status: str = "CANCELLED",
) -> dict[str, Any]:
    """The EventBridge event of ``detail_type`` for the seller's default bus; an agreement that
    ended is ``ended_status`` (``CANCELLED`` by the buyer, ``EXPIRED`` at its end date)."""
    agreement: dict[str, Any] = {"id": subject.agreement_id}
    if detail_type == _ENDED:
        agreement["status"] = ended_status
    elif detail_type in (_CREATED, _AMENDED):
        agreement["intent"] = "NEW" if detail_type == _CREATED else "AMEND"
        agreement["status"] = "ACTIVE"
        agreement["acceptanceTime"] = _event_time(at)
        if subject.starts_at is not None:
            agreement["startTime"] = _event_time(subject.starts_at)
        if subject.ends_at is not None:
            agreement["endTime"] = _event_time(subject.ends_at)
        if detail_type == _AMENDED:  # the Proposer's: whether it renews itself
            agreement["autoRenewalEnabled"] = subject.auto_renew
    detail: dict[str, Any] = {
        "requestId": request_id,
        "catalog": "AWSMarketplace",
        "agreement": agreement,
    }
    if detail_type in (_LICENSE_UPDATED, _LICENSE_DEPROVISIONED):
        detail["product"] = {
            "code": subject.product_code,
            "id": product_id_for(subject.product_code),
        }
        detail["license"] = {"arn": subject.license_arn}
    detail["acceptor"] = {"accountId": subject.buyer_account_id}
    detail["proposer"] = {"accountId": subject.seller_account_id}
    if detail_type == _CREATED and subject.seller_name:
        detail["proposer"]["name"] = subject.seller_name
    detail["offer"] = {"id": subject.offer_id or public_offer_id(subject.product_code)}
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": EVENTBRIDGE_SOURCE,
        "account": subject.seller_account_id,
        "time": _event_time(at),
        "region": NOTIFICATION_REGION,
        "resources": [f"arn:aws:aws-marketplace::aws:agreement:{subject.agreement_id}"],
        "detail": detail,
    }


def lifecycle_event(
    action: LifecycleAction,
    subject: MessageSubject,
    at: float,
    event_id: str,
    request_id: str,
    resumed_from_suspension: bool = False,
) -> LifecycleEvent:
    """The message ``action`` emits for ``subject`` at ``at`` (service clock), in the shape of
    the product's integration."""
    if not subject.concurrent_agreements:
        topic = (
            entitlement_topic_arn(subject.product_code)
            if action in (LifecycleAction.ENTITLEMENT_UPDATED, LifecycleAction.EXPIRE)
            else subscription_topic_arn(subject.product_code)
        )
        body: dict[str, Any] = sns_envelope(
            topic, sns_message(SNS_ACTIONS[action], subject), event_id, at
        )
        channel = Channel.SNS
    else:
        detail_type = DETAIL_TYPES[action]
        if resumed_from_suspension:
            detail_type = _LICENSE_UPDATED
        if detail_type is None:
            channel, topic, body = Channel.NONE, "", {}
        else:
            channel, topic = Channel.EVENTBRIDGE, detail_type
            ended = "EXPIRED" if action is LifecycleAction.EXPIRE else "CANCELLED"
            body = eventbridge_event(detail_type, subject, event_id, request_id, at, ended)
    return LifecycleEvent(
        event_id=event_id,
        action=action,
        product_code=subject.product_code,
        buyer_account_id=subject.buyer_account_id,
        license_arn=subject.license_arn,
        channel=channel,
        topic=topic,
        occurred_at=at,
        body=body,
    )


def delivery_headers(event: LifecycleEvent) -> dict[str, str]:
    """The HTTP headers of a webhook POST: SNS's own for an SNS notification."""
    if event.channel is Channel.SNS:
        return {
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": "Amazon Simple Notification Service Agent",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": event.event_id,
            "x-amz-sns-topic-arn": event.topic,
            "x-amz-sns-subscription-arn": _subscription_arn(event.topic),
        }
    return {
        "Content-Type": "application/json",
        "User-Agent": f"marketmeter/{__version__} (EventBridge target)",
    }
