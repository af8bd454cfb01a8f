"""A contract's end on the clock (lifecycle.contract_ends): which instants are announced, with
which messages, ids that are the same every time, and nothing changed in the catalog."""

from __future__ import annotations

import json
from datetime import timedelta

from marketmeter.catalog.model import Agreement, AgreementState
from marketmeter.lifecycle.contract_ends import (
    ContractEnds,
    announce_contract_ends,
    due_instants,
    instant_event_ids,
)
from marketmeter.lifecycle.types import Channel, LifecycleAction
from tests.lifecycle.test_lifecycle import CA_ARN, HOUR, LEGACY_ARN, T, catalog

END = T + 86_400.0  # 2027-01-16T08:00:00Z
PENDING_ARN = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"


def contracts() -> tuple[Agreement, ...]:
    return (
        Agreement(LEGACY_ARN, "444455556666", "prod-legacy", starts_at=T, ends_at=END),
        Agreement(CA_ARN, "444455556666", "prod-ca", starts_at=T, ends_at=END, offer_id="offer-1"),
        # not subscribed: its end is the unsubscribe ticker's (unsubscribe-success)
        Agreement(
            PENDING_ARN,
            "444455556666",
            "prod-ca",
            AgreementState.UNSUBSCRIBE_PENDING,
            starts_at=T,
            ends_at=END,
            pending_since=END - 60,
        ),
        # open-ended: never announced
        Agreement(
            "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000001",
            "222233334444",
            "prod-legacy",
            starts_at=T,
        ),
    )


def test_the_end_and_the_hour_after_it_are_due_once_the_clock_passes_them() -> None:
    snapshot = catalog(*contracts())
    ends = ContractEnds(snapshot, HOUR)

    def due(since: float, until: float) -> list[tuple[float, LifecycleAction, str]]:
        found = due_instants(snapshot, HOUR, since, until)
        assert ends.any_due(since, until) == bool(found)
        return [(i.at, i.action, i.agreement.license_arn) for i in found]

    assert due(T, END - 0.001) == []
    assert due(T, END) == [
        (END, LifecycleAction.EXPIRE, LEGACY_ARN),
        (END, LifecycleAction.EXPIRE, CA_ARN),
    ]
    assert due(END, END + 3599) == []
    assert due(END, END + 3600) == [(END + 3600, LifecycleAction.DEPROVISION, CA_ARN)]
    assert len(due(T, END + 7200)) == 3
    assert due(END + 3600, END + 7200) == []


def test_a_legacy_contracts_end_is_entitlement_updated_on_the_entitlement_topic() -> None:
    snapshot = catalog(*contracts())
    done = announce_contract_ends(snapshot, T, END, HOUR)

    assert done.changes.agreements == ()
    legacy, _ = done.events
    assert (legacy.action, legacy.channel, legacy.occurred_at) == (
        LifecycleAction.EXPIRE,
        Channel.SNS,
        END,
    )
    assert legacy.topic == (
        "arn:aws:sns:us-east-1:287250355862:aws-mp-entitlement-notification-prod-legacy"
    )
    assert json.loads(legacy.body["Message"]) == {
        "action": "entitlement-updated",
        "customer-identifier": "cust-alice",
        "product-code": "prod-legacy",
    }
    assert legacy.body["Timestamp"] == "2027-01-16T08:00:00.000Z"
    assert legacy.event_id == instant_event_ids(LifecycleAction.EXPIRE, LEGACY_ARN, END)[0]


def test_a_concurrent_agreements_end_is_ended_expired_then_license_deprovisioned() -> None:
    snapshot = catalog(*contracts())
    agreement_id = snapshot.agreements_by_license[CA_ARN].agreement_id
    event_id, request_id = instant_event_ids(LifecycleAction.EXPIRE, CA_ARN, END)

    _, ended = announce_contract_ends(snapshot, T, END, HOUR).events
    assert ended.topic == "Purchase Agreement Ended - Proposer"
    assert ended.body == {
        "version": "0",
        "id": event_id,
        "detail-type": "Purchase Agreement Ended - Proposer",
        "source": "aws.agreement-marketplace",
        "account": "111122223333",
        "time": "2027-01-16T08:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"],
        "detail": {
            "requestId": request_id,
            "catalog": "AWSMarketplace",
            "agreement": {"id": agreement_id, "status": "EXPIRED"},
            "acceptor": {"accountId": "444455556666"},
            "proposer": {"accountId": "111122223333"},
            "offer": {"id": "offer-1"},
        },
    }

    [deprovisioned] = announce_contract_ends(snapshot, END, END + 3600, HOUR).events
    assert (deprovisioned.action, deprovisioned.topic, deprovisioned.occurred_at) == (
        LifecycleAction.DEPROVISION,
        "License Deprovisioned - Manufacturer",
        END + 3600,
    )
    assert deprovisioned.body["detail"]["license"] == {"arn": CA_ARN}
    assert deprovisioned.body["time"] == "2027-01-16T09:00:00Z"


def test_announcing_again_gives_the_same_ids_and_a_moved_end_new_ones() -> None:
    snapshot = catalog(*contracts())
    first = [e.event_id for e in announce_contract_ends(snapshot, T, END, HOUR).events]
    again = [e.event_id for e in announce_contract_ends(snapshot, T, END, HOUR).events]
    assert first == again
    assert len(set(first)) == 2

    renewed = Agreement(LEGACY_ARN, "444455556666", "prod-legacy", starts_at=T, ends_at=END + 1)
    [event] = announce_contract_ends(catalog(renewed), T, END + 1, HOUR).events
    assert event.event_id not in first


def test_the_delay_sets_the_hour_for_final_records() -> None:
    snapshot = catalog(*contracts())
    five = timedelta(minutes=5)
    assert [i.at for i in due_instants(snapshot, five, END, END + 3600)] == [END + 300]
    assert ContractEnds(snapshot, five).any_due(END + 299, END + 300)
    assert not ContractEnds(snapshot, five).any_due(END + 300, END + 3600)
