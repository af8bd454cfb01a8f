"""The lifecycle's pure transitions and the exact messages they emit (fixed clock, sequential
ids, no I/O)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    CatalogSnapshot,
    Integration,
    Product,
    ProductKind,
    Seller,
    product_id_for,
)
from marketmeter.lifecycle import transitions as lifecycle
from marketmeter.lifecycle.types import Channel, LifecycleAction, Transition
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.refusal import Refusal

T = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LEGACY_ARN = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
CA_ARN = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
SUSPENDED_ARN = "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000001"
HOUR = timedelta(hours=1)


def catalog(*agreements: Agreement) -> CatalogSnapshot:
    return CatalogSnapshot(
        1,
        Catalog(
            sellers=(Seller("111122223333"),),
            products=(
                Product("prod-legacy", "111122223333", ProductKind.SAAS, ("users",)),
                Product(
                    "prod-ca",
                    "111122223333",
                    ProductKind.SAAS,
                    ("requests",),
                    Integration.CONCURRENT_AGREEMENTS,
                ),
            ),
            buyers=(Buyer("444455556666", "cust-alice"), Buyer("222233334444", "cust-carol")),
            agreements=agreements
            or (
                Agreement(LEGACY_ARN, "444455556666", "prod-legacy", starts_at=0.0),
                Agreement(CA_ARN, "444455556666", "prod-ca", starts_at=0.0, offer_id="offer-1"),
                Agreement(
                    SUSPENDED_ARN,
                    "222233334444",
                    "prod-legacy",
                    AgreementState.SUSPENDED,
                    starts_at=0.0,
                ),
            ),
        ),
    )


def after(snapshot: CatalogSnapshot, transition: Transition) -> CatalogSnapshot:
    """The catalog with the transition's agreement applied."""
    assert transition.agreement is not None
    changed = {a.license_arn: a for a in transition.changes.agreements}
    kept = tuple(changed.pop(a.license_arn, a) for a in snapshot.catalog.agreements)
    return CatalogSnapshot(
        snapshot.version + 1,
        Catalog(
            snapshot.catalog.sellers,
            snapshot.catalog.products,
            snapshot.catalog.buyers,
            kept + tuple(changed.values()),
        ),
    )


def test_unsubscribe_is_pending_for_the_delay_then_due() -> None:
    snapshot = catalog()
    done = lifecycle.unsubscribe(snapshot, LEGACY_ARN, T, HOUR, SequentialIds())
    pending = done.agreement
    assert pending is not None
    assert (pending.state, pending.pending_since, pending.ends_at) == (
        AgreementState.UNSUBSCRIBE_PENDING,
        T,
        T + 3600,
    )
    later = after(snapshot, done)
    assert pending.effective_state(T + 3599.999) is AgreementState.UNSUBSCRIBE_PENDING
    assert pending.effective_state(T + 3600) is AgreementState.UNSUBSCRIBED
    assert later.entitlement("444455556666", "prod-legacy", T + 3599, T + 3599) == pending
    assert later.entitlement("444455556666", "prod-legacy", T + 3599, T + 3600) is None
    assert lifecycle.due_unsubscriptions(later, T + 3599) == []
    assert lifecycle.due_unsubscriptions(later, T + 3600) == [pending]

    ended = lifecycle.complete_unsubscribe(later, pending.agreement_id, T + 7200, SequentialIds())
    assert ended.agreement is not None
    assert ended.agreement.state is AgreementState.UNSUBSCRIBED
    [event] = ended.events
    assert (event.action, event.occurred_at) == (LifecycleAction.UNSUBSCRIBE_SUCCESS, T + 3600)


def test_the_sns_notification_is_exactly_what_an_sqs_subscriber_receives() -> None:
    done = lifecycle.unsubscribe(catalog(), LEGACY_ARN, T, HOUR, SequentialIds())
    [event] = done.events
    topic = "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prod-legacy"
    assert (event.channel, event.topic) == (Channel.SNS, topic)
    assert list(event.body) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
    ]
    assert {k: v for k, v in event.body.items() if k not in ("Signature", "UnsubscribeURL")} == {
        "Type": "Notification",
        "MessageId": "00000000-0000-4000-8000-000000000001",
        "TopicArn": topic,
        "Message": '{"action":"unsubscribe-pending","customer-identifier":"cust-alice",'
        '"product-code":"prod-legacy","isFreeTrialTermPresent":"false"}',
        "Timestamp": "2027-01-15T08:00:00.000Z",
        "SignatureVersion": "1",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-marketmeter.pem",
    }
    assert event.body["UnsubscribeURL"].startswith(
        f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:"
    )


def test_a_subscription_with_an_offer_names_it_and_its_free_trial() -> None:
    done = lifecycle.subscribe(
        catalog(),
        "prod-legacy",
        "555566667777",
        T,
        SequentialTokens(),
        SequentialIds(),
        free_trial=True,
        offer_id="offer-abc",
    )
    assert done.agreement is not None
    assert done.agreement.offer_id == "offer-abc"
    assert done.tokens[0].offer_type == "free-trial"
    [event] = done.events
    buyer = done.changes.buyers[0]
    assert json.loads(event.body["Message"]) == {
        "action": "subscribe-success",
        "customer-identifier": buyer.customer_identifier,
        "product-code": "prod-legacy",
        "offer-identifier": "offer-abc",
        "isFreeTrialTermPresent": "true",
    }


def test_an_entitlement_update_goes_to_the_entitlement_topic() -> None:
    done = lifecycle.update_entitlement(catalog(), LEGACY_ARN, T, SequentialIds())
    [event] = done.events
    assert event.topic == (
        "arn:aws:sns:us-east-1:287250355862:aws-mp-entitlement-notification-prod-legacy"
    )
    assert json.loads(event.body["Message"]) == {
        "action": "entitlement-updated",
        "customer-identifier": "cust-alice",
        "product-code": "prod-legacy",
    }


# The events as AWS's seller guide prints them
# (https://docs.aws.amazon.com/marketplace/latest/userguide/notifications-eventbridge.html).


def test_a_concurrent_agreements_product_emits_the_eventbridge_event() -> None:
    """Ended - Proposer: the seller is the ISV and the proposer, and AWS then sends only the
    Proposer agreement event; its agreement is {id, status} only."""
    snapshot = catalog()
    agreement_id = snapshot.agreements_by_license[CA_ARN].agreement_id
    [event] = lifecycle.unsubscribe(snapshot, CA_ARN, T, HOUR, SequentialIds()).events
    assert (event.channel, event.topic) == (
        Channel.EVENTBRIDGE,
        "Purchase Agreement Ended - Proposer",
    )
    assert event.body == {
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000001",
        "detail-type": "Purchase Agreement Ended - Proposer",
        "source": "aws.agreement-marketplace",
        "account": "111122223333",
        "time": "2027-01-15T08:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"],
        "detail": {
            "requestId": "00000000-0000-4000-8000-000000000002",
            "catalog": "AWSMarketplace",
            "agreement": {"id": agreement_id, "status": "CANCELLED"},
            "acceptor": {"accountId": "444455556666"},
            "proposer": {"accountId": "111122223333"},
            "offer": {"id": "offer-1"},
        },
    }


def test_a_new_concurrent_agreement_emits_created_proposer() -> None:
    done = lifecycle.subscribe(
        catalog(),
        "prod-ca",
        "555566667777",
        T,
        SequentialTokens(),
        SequentialIds(),
        offer_id="offer-1234567890123",
    )
    assert done.agreement is not None
    agreement_id = done.agreement.agreement_id
    [event] = done.events
    assert event.body == {
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000001",
        "detail-type": "Purchase Agreement Created - Proposer",
        "source": "aws.agreement-marketplace",
        "account": "111122223333",
        "time": "2027-01-15T08:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"],
        "detail": {
            "requestId": "00000000-0000-4000-8000-000000000002",
            "catalog": "AWSMarketplace",
            "agreement": {
                "id": agreement_id,
                "intent": "NEW",
                "status": "ACTIVE",
                "acceptanceTime": "2027-01-15T08:00:00Z",
                "startTime": "2027-01-15T08:00:00Z",
            },
            "acceptor": {"accountId": "555566667777"},
            "proposer": {"accountId": "111122223333"},
            "offer": {"id": "offer-1234567890123"},
        },
    }


def test_an_entitlement_update_emits_license_updated_manufacturer() -> None:
    snapshot = catalog()
    agreement_id = snapshot.agreements_by_license[CA_ARN].agreement_id
    [event] = lifecycle.update_entitlement(snapshot, CA_ARN, T, SequentialIds()).events
    assert event.body["detail-type"] == "License Updated - Manufacturer"
    assert event.body["resources"] == [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"]
    assert event.body["detail"] == {
        "requestId": "00000000-0000-4000-8000-000000000002",
        "catalog": "AWSMarketplace",
        "agreement": {"id": agreement_id},
        "product": {"code": "prod-ca", "id": product_id_for("prod-ca")},
        "license": {"arn": CA_ARN},
        "acceptor": {"accountId": "444455556666"},
        "proposer": {"accountId": "111122223333"},
        "offer": {"id": "offer-1"},
    }
    assert re.fullmatch(r"prod-[0-9a-z]{13}", product_id_for("prod-ca"))


def test_a_failed_concurrent_agreements_subscription_is_logged_not_delivered() -> None:
    done = lifecycle.subscribe_fail(catalog(), "prod-ca", "555566667777", T, SequentialIds())
    [event] = done.events
    assert (done.agreement, done.changes, event.channel, event.body) == (
        None,
        Catalog(),
        Channel.NONE,
        {},
    )


@pytest.mark.parametrize(
    ("transition", "reference", "message"),
    [
        (
            "unsubscribe",
            SUSPENDED_ARN,
            "is suspended; only a subscribed agreement can be unsubscribed",
        ),
        (
            "resubscribe",
            LEGACY_ARN,
            "is subscribed; only a suspended, unsubscribed or unsubscribe-pending agreement can "
            "be resubscribed",
        ),
        (
            "update_entitlement",
            SUSPENDED_ARN,
            "is suspended; only a subscribed or unsubscribe-pending agreement has entitlements "
            "to update",
        ),
    ],
)
def test_a_transition_the_state_does_not_allow_is_refused_naming_it(
    transition: str, reference: str, message: str
) -> None:
    snapshot = catalog()
    plans: dict[str, Callable[[], object]] = {
        "unsubscribe": lambda: lifecycle.unsubscribe(snapshot, reference, T, HOUR, SequentialIds()),
        "resubscribe": lambda: lifecycle.resubscribe(snapshot, reference, T, SequentialIds()),
        "update_entitlement": lambda: lifecycle.update_entitlement(
            snapshot, reference, T, SequentialIds()
        ),
    }
    with pytest.raises(Refusal) as refused:
        plans[transition]()
    agreement_id = snapshot.agreements_by_license[reference].agreement_id
    assert (refused.value.kind, refused.value.message) == (
        "conflict",
        f"agreement {agreement_id} {message}",
    )


def test_suspending_an_unsubscribed_agreement_is_refused() -> None:
    unsubscribed = Agreement(
        LEGACY_ARN, "444455556666", "prod-legacy", AgreementState.UNSUBSCRIBED, starts_at=0.0
    )
    with pytest.raises(Refusal) as refused:
        lifecycle.suspend(catalog(unsubscribed), LEGACY_ARN, T, SequentialIds())
    assert refused.value.message.endswith(
        "is unsubscribed; only a subscribed or unsubscribe-pending agreement can be suspended"
    )


def test_an_unknown_agreement_is_not_found() -> None:
    with pytest.raises(Refusal) as refused:
        lifecycle.suspend(catalog(), "agmt-nope", T, SequentialIds())
    assert (refused.value.kind, refused.value.field) == ("not-found", "agreement")


def test_resubscribing_a_suspended_agreement_reopens_it_as_license_updated() -> None:
    done = lifecycle.resubscribe(catalog(), SUSPENDED_ARN, T, SequentialIds())
    assert done.agreement is not None
    assert (done.agreement.state, done.agreement.ends_at) == (AgreementState.SUBSCRIBED, None)
    [event] = done.events
    assert json.loads(event.body["Message"])["action"] == "subscribe-success"


def test_resubscribing_after_unsubscribe_success_starts_a_new_period_now() -> None:
    ended = Agreement(
        LEGACY_ARN,
        "444455556666",
        "prod-legacy",
        AgreementState.UNSUBSCRIBE_PENDING,
        starts_at=0.0,
        ends_at=T - 2 * HOUR.total_seconds(),
        pending_since=T - 3 * HOUR.total_seconds(),
    )
    done = lifecycle.resubscribe(catalog(ended), LEGACY_ARN, T, SequentialIds())
    assert done.agreement is not None
    assert (done.agreement.state, done.agreement.starts_at, done.agreement.ends_at) == (
        AgreementState.SUBSCRIBED,
        T,
        None,
    )
    # usage stamped in the gap (or before it) is not billable again
    assert not done.agreement.covers(T - HOUR.total_seconds())
    assert done.agreement.covers(T)


def test_resubscribing_a_suspended_agreement_keeps_its_start() -> None:
    done = lifecycle.resubscribe(catalog(), SUSPENDED_ARN, T, SequentialIds())
    assert done.agreement is not None
    assert done.agreement.starts_at == 0.0


def test_resubscribing_while_unsubscribe_pending_sends_subscribe_success_instead() -> None:
    """AWS: a buyer who re-subscribes before unsubscribe-success gets subscribe-success, and
    unsubscribe-success is not sent
    (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-notification.html)."""
    pending = lifecycle.unsubscribe(catalog(), LEGACY_ARN, T, HOUR, SequentialIds())
    snapshot = after(catalog(), pending)
    done = lifecycle.resubscribe(snapshot, LEGACY_ARN, T + 600, SequentialIds())
    assert done.agreement is not None
    assert (done.agreement.state, done.agreement.starts_at, done.agreement.ends_at) == (
        AgreementState.SUBSCRIBED,
        0.0,
        None,
    )
    [event] = done.events
    assert json.loads(event.body["Message"])["action"] == "subscribe-success"
    # nothing is left for the ticker to complete: no unsubscribe-success follows
    resumed = after(snapshot, done)
    assert lifecycle.due_unsubscriptions(resumed, T + 2 * HOUR.total_seconds()) == []


def test_amending_a_concurrent_agreement_emits_amended_then_license_updated() -> None:
    """New quantities or a new end: AWS amends the agreement (intent AMEND, the Proposer's
    autoRenewalEnabled), then updates its license. A legacy product gets entitlement-updated
    alone; an update that changes neither (a free trial turned paid) no Amended."""
    snapshot = catalog()
    agreement_id = snapshot.agreements_by_license[CA_ARN].agreement_id
    done = lifecycle.update_entitlement(snapshot, CA_ARN, T, SequentialIds(), ends_at=T + 86_400)
    amended, license_updated = done.events
    assert [e.action for e in done.events] == [
        LifecycleAction.AMEND,
        LifecycleAction.ENTITLEMENT_UPDATED,
    ]
    assert license_updated.topic == "License Updated - Manufacturer"
    assert amended.body["detail-type"] == "Purchase Agreement Amended - Proposer"
    assert amended.body["detail"] == {
        "requestId": "00000000-0000-4000-8000-000000000004",
        "catalog": "AWSMarketplace",
        "agreement": {
            "id": agreement_id,
            "intent": "AMEND",
            "status": "ACTIVE",
            "acceptanceTime": "2027-01-15T08:00:00Z",
            "startTime": "1970-01-01T00:00:00Z",
            "endTime": "2027-01-16T08:00:00Z",
            "autoRenewalEnabled": False,
        },
        "acceptor": {"accountId": "444455556666"},
        "proposer": {"accountId": "111122223333"},
        "offer": {"id": "offer-1"},
    }
    legacy = lifecycle.update_entitlement(snapshot, LEGACY_ARN, T, SequentialIds(), ends_at=T + 1)
    assert [e.action for e in legacy.events] == [LifecycleAction.ENTITLEMENT_UPDATED]
    paid = lifecycle.update_entitlement(snapshot, CA_ARN, T, SequentialIds(), free_trial=False)
    assert [e.topic for e in paid.events] == ["License Updated - Manufacturer"]
