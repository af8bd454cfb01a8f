"""The admin client's ``agreements`` handle (and the pytest plugin's ``bench.agreements``)
against a real server on the demo catalog: a contract bought, amended, ended on the clock, and
the notifications each sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest

from marketmeter.testing import MarketmeterServer
from marketmeter.testing.admin_client import AdminError, MarketmeterAdmin

DEMO = str(files("marketmeter.catalog") / "demo.yaml")
BUYER = "135713571357"
START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin() -> Iterator[MarketmeterAdmin]:
    with MarketmeterServer(catalog=DEMO) as server:
        yield server.admin


def test_a_contract_bought_amended_and_ended_on_the_clock(admin: MarketmeterAdmin) -> None:
    agreements = admin.agreements
    admin.clock.set(START)
    try:
        bought = agreements.subscribe(
            "demo-saas-contract", BUYER, quantities={"AdminUsers": 5}, auto_renew=True
        )
        agreement = bought["agreement"]
        assert [e["message"]["detail-type"] for e in bought["events"]] == [
            "Purchase Agreement Created - Proposer",
            "License Updated - Manufacturer",
        ]
        assert (agreement["endsAt"], agreement["entitlements"]) == (
            "2031-01-01T00:00:00Z",
            [{"dimension": "AdminUsers", "value": 5, "expiresAt": "2031-01-01T00:00:00Z"}],
        )
        reference = agreement["licenseArn"]
        amended = agreements.update(
            reference, entitlements={"AdminUsers": 8}, ends_at=START + timedelta(days=30)
        )
        assert amended["events"][0]["message"]["detail"]["agreement"]["autoRenewalEnabled"]
        assert agreements.get(reference)["endsAt"] == "2030-01-31T00:00:00Z"
        assert [a["licenseArn"] for a in agreements.list(buyer=BUYER)] == [reference]

        admin.clock.advance(timedelta(days=30, hours=1))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(agreements.events(buyer=BUYER, action="deprovision")) < 1:  # the ticker's
            assert datetime.now(UTC) < deadline, agreements.events(buyer=BUYER)
            time.sleep(0.05)
        told = [(e["action"], e["occurredAt"]) for e in agreements.events(buyer=BUYER)]
        assert told == [
            ("subscribe-success", "2030-01-01T00:00:00Z"),
            ("entitlement-updated", "2030-01-01T00:00:00Z"),
            ("amend", "2030-01-01T00:00:00Z"),
            ("entitlement-updated", "2030-01-01T00:00:00Z"),
            ("expire", "2030-01-31T00:00:00Z"),
            ("deprovision", "2030-01-31T01:00:00Z"),
        ]
    finally:
        admin.clock.reset()


def test_a_refused_transition_is_an_admin_error(admin: MarketmeterAdmin) -> None:
    with pytest.raises(AdminError) as refused:
        admin.agreements.subscribe("demo-saas-legacy", "246824682468", selector="P12M")
    assert (refused.value.status, refused.value.field) == (400, "configuration")
    with pytest.raises(AdminError) as missing:
        admin.agreements.unsubscribe("agmt-nope")
    assert missing.value.status == 404
