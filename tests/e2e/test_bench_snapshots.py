"""Reset and snapshots end to end: ``POST /_marketmeter/reset`` and ``/_marketmeter/snapshots``
of a real ``marketmeter serve``, observed through real boto3 calls and the usage view.

One server serves the module; before each test it is reset and its snapshots deleted
(snapshots survive a reset). Dropping the catalog happens on a server of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketmeter.testing.admin_client import AdminError
from tests.e2e.bench_fixtures import Bench, metering_client, outcome, start_bench
from tests.e2e.buyers import ALICE_KEY, admin
from tests.e2e.wire_records import record

pytestmark = pytest.mark.e2e

NAME_RULE = "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
CATALOG_COUNTS = {
    "sellers": 2,
    "access_keys": 4,
    "products": 6,
    "dimensions": 7,
    "notification_urls": 0,
    "buyers": 7,
    "agreements": 16,
    "entitlements": 0,
    "offers": 0,
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    yield from start_bench(tmp_path_factory.mktemp("bench-snapshots"))


@pytest.fixture
def bench(shared: Bench) -> Bench:
    """The module's server, reset, without snapshots."""
    shared.admin.reset()
    for snapshot in shared.admin.snapshots():
        shared.admin.delete_snapshot(snapshot["name"])
    return shared


def bill_one(bench: Bench, *records: dict[str, Any], product: str = "prod-legacy") -> list[Any]:
    """Bill ``records``; each must be a Success; returns their MeteringRecordIds."""
    response = metering_client(bench.url).batch_meter_usage(
        ProductCode=product, UsageRecords=list(records)
    )
    assert [r["Status"] for r in response["Results"]] == ["Success"] * len(records)
    return [r["MeteringRecordId"] for r in response["Results"]]


def billed_ids(bench: Bench) -> list[str]:
    return [r["meteringRecordId"] for r in bench.admin.usage()]


def meter_with_token(bench: Bench, now: int, token: str) -> str:
    """MeterUsage of the per-request product, which claims its ClientToken."""
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    response = alice.meter_usage(
        ProductCode="prod-agent",
        Timestamp=now,
        UsageDimension="invocations",
        UsageQuantity=1,
        ClientToken=token,
    )
    record_id: str = response["MeteringRecordId"]
    return record_id


# --- reset -------------------------------------------------------------------------------------


def test_reset_empties_the_ledger_and_keeps_the_catalog(bench: Bench, now: int) -> None:
    [first] = bill_one(bench, record(now))
    metered = meter_with_token(bench, now, "token-1")

    answer = bench.admin.reset()

    assert answer["deleted"] == {
        "usage_records": 2,
        "request_claims": 1,
        "container_registrations": 0,
    }
    assert (answer["catalogDropped"], answer["kept"]) == (False, [])
    assert billed_ids(bench) == []
    [again] = bill_one(bench, record(now))  # the same record bills again, as new
    assert again != first
    metered_again = meter_with_token(bench, now, "token-1")  # the ClientToken is free again
    assert metered_again != metered
    assert sorted(billed_ids(bench)) == sorted([again, metered_again])


def test_reset_puts_clock_faults_quota_and_journal_back(bench: Bench, now: int) -> None:
    bench.admin.clock.set(now - 3600)
    bench.admin.faults.add({"operation": "MeterUsage", "error": {"code": "ThrottlingException"}})
    bench.admin.faults.latency(50)
    bench.admin.faults.quota("custom", {"BatchMeterUsage": 1})
    bill_one(bench, record(now - 3660))

    answer = bench.admin.reset()

    assert answer["kept"] == []
    assert answer["clock"]["mode"] == "system"
    assert abs(answer["clock"]["epoch"] - time.time()) < 5
    assert bench.admin.clock.state()["mode"] == "system"
    assert bench.admin.faults.rules() == []
    assert admin(bench.url, "GET", "/_marketmeter/faults/effects") == (200, {"latency": 0})
    assert admin(bench.url, "GET", "/_marketmeter/faults/quota") == (
        200,
        {"profile": "off", "rates": {}},
    )
    assert bench.admin.journal.entries() == []


def test_reset_keeping_the_clock_leaves_a_frozen_clock_frozen(bench: Bench, now: int) -> None:
    frozen_at = now - 7200
    bench.admin.clock.set(frozen_at)
    bench.admin.faults.add({"operation": "MeterUsage"})

    answer = bench.admin.reset(keep=("clock",))

    assert answer["kept"] == ["clock"]
    assert (answer["clock"]["mode"], answer["clock"]["epoch"]) == ("frozen", frozen_at)
    time.sleep(0.05)
    state = bench.admin.clock.state()
    assert (state["mode"], state["epoch"]) == ("frozen", frozen_at)
    assert bench.admin.faults.rules() == []


def test_reset_keeping_faults_and_journal_leaves_them_as_they_were(bench: Bench, now: int) -> None:
    bench.admin.faults.add({"operation": "MeterUsage", "times": 2})
    bill_one(bench, record(now))
    rules, journal = bench.admin.faults.rules(), bench.admin.journal.entries()

    answer = bench.admin.reset(keep=("journal", "faults"))

    assert answer["kept"] == ["faults", "journal"]
    assert bench.admin.faults.rules() == rules
    assert bench.admin.journal.entries() == journal
    assert billed_ids(bench) == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"keep": ["ledger"]}, "keep", "must be a list of: clock, faults, journal"),
        ({"keep": "clock"}, "keep", "must be a list of: clock, faults, journal"),
        ({"dropCatalog": "yes"}, "dropCatalog", "must be true or false"),
        ({"everything": True}, "everything", "unknown field; known: dropCatalog, keep"),
    ],
    ids=["keep-unknown", "keep-not-a-list", "dropCatalog", "unknown-field"],
)
def test_a_refused_reset_changes_nothing(
    bench: Bench, now: int, body: dict[str, Any], field: str, message: str
) -> None:
    [billed] = bill_one(bench, record(now))

    assert admin(bench.url, "POST", "/_marketmeter/reset", body) == (
        400,
        {"error": message, "field": field},
    )
    assert billed_ids(bench) == [billed]


# --- snapshots ---------------------------------------------------------------------------------


def test_restore_brings_back_exactly_the_saved_ledger(bench: Bench, now: int) -> None:
    [kept] = bill_one(bench, record(now))
    saved_usage = bench.admin.usage()

    saved = bench.admin.save_snapshot("before-bob")
    [later] = bill_one(bench, record(now, "cust-bob"))
    assert billed_ids(bench) == [kept, later]
    restored = bench.admin.restore_snapshot("before-bob")

    assert saved["name"] == "before-bob"
    assert saved["counts"] == {
        **CATALOG_COUNTS,
        "registration_tokens": 5,  # minted when the catalog was applied
        "signing_keys": 0,  # made by the first RegisterUsage
        "container_registrations": 0,
        "request_claims": 0,
        "usage_records": 1,
        "lifecycle_events": 0,
        "event_deliveries": 0,
        "delivery_attempts": 0,
        "sns_subscriptions": 0,
    }
    assert restored == saved
    assert bench.admin.usage() == saved_usage
    assert bill_one(bench, record(now)) == [kept]  # a replay answers the original id
    [rebilled] = bill_one(bench, record(now, "cust-bob"))  # gone with the restore: bills anew
    assert rebilled != later
    assert billed_ids(bench) == [kept, rebilled]


def test_saving_under_a_name_again_replaces_the_snapshot(bench: Bench, now: int) -> None:
    bench.admin.save_snapshot("latest")
    [billed] = bill_one(bench, record(now))

    again = bench.admin.save_snapshot("latest")
    bench.admin.reset()
    bench.admin.restore_snapshot("latest")

    assert again["counts"]["usage_records"] == 1
    assert [s["name"] for s in bench.admin.snapshots()] == ["latest"]
    assert billed_ids(bench) == [billed]


def test_snapshots_are_listed_read_and_deleted(bench: Bench) -> None:
    first = bench.admin.save_snapshot("first")
    second = bench.admin.save_snapshot("second.v2_x-1")

    assert bench.admin.snapshots() == [first, second]
    assert admin(bench.url, "GET", "/_marketmeter/snapshots/first") == (200, first)
    assert admin(bench.url, "DELETE", "/_marketmeter/snapshots/first") == (204, "")
    assert bench.admin.snapshots() == [second]
    gone = (404, {"error": "no snapshot named 'first'", "field": "name"})
    assert admin(bench.url, "GET", "/_marketmeter/snapshots/first") == gone
    assert admin(bench.url, "DELETE", "/_marketmeter/snapshots/first") == gone
    assert admin(bench.url, "POST", "/_marketmeter/snapshots/first/restore") == gone
    with pytest.raises(AdminError) as raised:
        bench.admin.restore_snapshot("first")
    assert (raised.value.status, raised.value.field) == (404, "name")


@pytest.mark.parametrize(
    "name",
    ["bad name", "", "x" * 65, "slash/ed", "ünïcode", 5, None],
    ids=["space", "empty", "65-chars", "slash", "unicode", "number", "missing"],
)
def test_a_bad_snapshot_name_is_refused(bench: Bench, name: Any) -> None:
    body = {} if name is None else {"name": name}

    assert admin(bench.url, "POST", "/_marketmeter/snapshots", body) == (
        400,
        {"error": NAME_RULE, "field": "name"},
    )
    assert bench.admin.snapshots() == []


def test_a_bad_name_in_the_path_is_refused(bench: Bench) -> None:
    refused = (400, {"error": NAME_RULE, "field": "name"})
    assert admin(bench.url, "GET", "/_marketmeter/snapshots/bad%20name") == refused
    assert admin(bench.url, "DELETE", "/_marketmeter/snapshots/" + "y" * 65) == refused
    assert admin(bench.url, "POST", "/_marketmeter/snapshots/bad%21/restore") == refused


def test_a_64_character_name_is_accepted(bench: Bench) -> None:
    name = "a" * 64
    assert bench.admin.save_snapshot(name)["name"] == name
    assert [s["name"] for s in bench.admin.snapshots()] == [name]


# --- dropping the catalog ----------------------------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Bench]:
    yield from start_bench(tmp_path)


def test_drop_catalog_then_restore_serves_the_restored_catalog_at_once(
    own: Bench, now: int
) -> None:
    [billed] = bill_one(own, record(now))
    own.admin.save_snapshot("with-catalog")

    dropped = own.admin.reset(drop_catalog=True)

    assert dropped["catalogDropped"] is True
    assert dropped["deleted"]["usage_records"] == 1
    assert dropped["deleted"]["products"] == 6
    client = metering_client(own.url)
    assert (
        outcome(
            lambda: client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
        )
        == "InvalidProductCodeException"
    )
    assert billed_ids(own) == []

    own.admin.restore_snapshot("with-catalog")

    assert billed_ids(own) == [billed]
    assert bill_one(own, record(now)) == [billed]  # the cached catalog was reloaded at once
    assert len(bill_one(own, record(now, "cust-bob"))) == 1
