"""The store contract (``store.base.Store`` and ``OperatorStore``), run against every backend.

Each test runs on SQLite and on PostgreSQL (``store_url`` of tests/conftest.py, ids ``sqlite``
and ``postgresql``), through ``open_store``: the catalog, the ledger and its dedupe key, the
usage view, registration tokens, signing keys, container registrations and ClientToken claims
must behave the same on both. What one backend alone has is tested beside it: SQLite's writer
thread, pragmas and upgrade in test_sqlite.py; PostgreSQL's migrations lock, pool and races
between nodes in test_postgres.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from decimal import Decimal

import psycopg
import pytest

from marketmeter.catalog.loader import load_catalog, load_catalog_file
from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    Catalog,
    Integration,
    Product,
    ProductKind,
)
from marketmeter.metering.types import (
    ContainerRegistration,
    LedgerEntry,
    LedgerOutcome,
    RegistrationToken,
    RequestClaim,
    RequestClaimOutcome,
    SigningKey,
    Tag,
    UsageAllocation,
    UsageRecord,
)
from marketmeter.store.base import BilledRecord, OperatorStore, TokenQuery, UsageQuery
from tests.conftest import CATALOG, OpenStore

HOUR = 1795435200  # 2026-11-23T12:00:00Z
ALICE = "444455556666"
BOB = "777788889999"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
ALICE_AMI = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003"
UNIQUE_VIOLATION = {"sqlite": sqlite3.IntegrityError, "postgresql": psycopg.errors.UniqueViolation}


@pytest.fixture
def ledger(store_url: str, open_test_store: OpenStore) -> OperatorStore:
    """A new store with an empty catalog."""
    return open_test_store(store_url)


# --- ledger entries ---------------------------------------------------------------------------


def entry(n: int, quantity: int = 1, hour: int = 3600 * 490_000, attempt: str = "") -> LedgerEntry:
    """Key ``n`` (one account per ``n``); the id says the key, quantity and attempt."""
    record = UsageRecord(
        timestamp=hour + 5, dimension="users", quantity=quantity, customer_identifier=f"c{n}"
    )
    return LedgerEntry(
        hour=hour,
        scope="product:p",
        customer_account=f"{n:012d}",
        dimension="users",
        quantity_micros=quantity * 1_000_000,
        metering_record_id=f"id-{n}-{quantity}{attempt}",
        product_code="p",
        record=record,
        received_at=1.0,
    )


def meter_entry(
    scope: str = "instance:prod-ami|i-1",
    quantity: int = 1,
    record_id: str = "id-1",
    account: str = ALICE,
    instance: str | None = "i-1",
) -> LedgerEntry:
    """A MeterUsage row of prod-ami."""
    record = UsageRecord(
        timestamp=HOUR + 60,
        dimension="vcpu_hours",
        quantity=quantity,
        customer_identifier="cust-alice",
        customer_aws_account_id=account,
        license_arn=ALICE_AMI,
    )
    return LedgerEntry(
        hour=HOUR,
        scope=scope,
        customer_account=account,
        dimension="vcpu_hours",
        quantity_micros=quantity * 1_000_000,
        metering_record_id=record_id,
        product_code="prod-ami",
        record=record,
        received_at=HOUR + 61.5,
        operation="MeterUsage",
        instance=instance,
    )


def usage_entry(
    record_id: str,
    timestamp: float,
    account: str = ALICE,
    dimension: str = "users",
    product: str = "prod-legacy",
    micros: int = 1_000_000,
) -> LedgerEntry:
    """A BatchMeterUsage row keyed by product, in the hour of ``timestamp`` (a float: a batch
    mixing whole and fractional timestamps is test_a_batch_may_mix_int_and_float_timestamps)."""
    return LedgerEntry(
        hour=int(timestamp // 3600) * 3600,
        scope=f"product:{product}",
        customer_account=account,
        dimension=dimension,
        quantity_micros=micros,
        metering_record_id=record_id,
        product_code=product,
        record=UsageRecord(timestamp=float(timestamp), dimension=dimension, quantity=1),
        received_at=float(timestamp) + 1,
    )


def outcomes(found: list[LedgerOutcome]) -> list[tuple[str, int, bool]]:
    return [(o.metering_record_id, o.quantity_micros // 1_000_000, o.inserted) for o in found]


# --- the catalog ------------------------------------------------------------------------------


def in_read_order(catalog: Catalog) -> Catalog:
    """``catalog`` as a store reads it back: every kind of entry ordered by its key."""
    return Catalog(
        sellers=tuple(
            dataclasses.replace(
                s, access_keys=tuple(sorted(s.access_keys, key=lambda k: k.access_key_id))
            )
            for s in sorted(catalog.sellers, key=lambda s: s.account_id)
        ),
        products=tuple(sorted(catalog.products, key=lambda p: p.product_code)),
        buyers=tuple(
            dataclasses.replace(
                b, access_keys=tuple(sorted(b.access_keys, key=lambda k: k.access_key_id))
            )
            for b in sorted(catalog.buyers, key=lambda b: b.account_id)
        ),
        agreements=tuple(sorted(catalog.agreements, key=lambda a: a.license_arn)),
    )


def test_a_new_database_has_an_empty_catalog_at_version_0(ledger: OperatorStore) -> None:
    snapshot = ledger.catalog_snapshot_now()
    assert (snapshot.version, snapshot.catalog) == (0, Catalog())
    assert asyncio.run(ledger.catalog_snapshot()) is snapshot


def test_an_applied_catalog_reads_back_whole_in_key_order(ledger: OperatorStore) -> None:
    catalog = load_catalog_file(CATALOG)
    assert ledger.apply_catalog_now(catalog) == 1
    snapshot = ledger.catalog_snapshot_now()
    assert snapshot.version == 1
    assert snapshot.catalog == in_read_order(catalog)
    assert [p.product_code for p in snapshot.catalog.products] == [
        "prod-agent",
        "prod-ami",
        "prod-ca",
        "prod-container",
        "prod-legacy",
        "prod-other",
    ]
    assert snapshot.products["prod-legacy"].dimensions == ("users", "api_calls")
    assert snapshot.products["prod-agent"].per_request_metering is True
    assert snapshot.key_owners["AKIATESTALICE0000001"].account_id == ALICE
    assert asyncio.run(ledger.catalog_snapshot()) is snapshot  # unchanged version: the cached one


def test_applying_upserts_entries_and_bumps_the_version(ledger: OperatorStore) -> None:
    catalog = load_catalog_file(CATALOG)
    ledger.apply_catalog_now(catalog)
    before = ledger.catalog_snapshot_now()
    legacy = before.products["prod-legacy"]
    changed = Catalog(
        sellers=(dataclasses.replace(before.catalog.sellers[0], name="Renamed"),),
        products=(
            dataclasses.replace(
                legacy, dimensions=("api_calls", "seats"), name="Legacy", registration_url="x"
            ),
            Product(
                "prod-new",
                "111122223333",
                ProductKind.SAAS,
                ("b", "a"),
                Integration.CONCURRENT_AGREEMENTS,
                per_request_metering=True,
            ),
        ),
        agreements=(
            dataclasses.replace(
                before.agreements_by_license[ALICE_LEGACY],
                state=AgreementState.SUSPENDED,
                ends_at=HOUR + 0.5,
                free_trial=True,
            ),
        ),
    )
    assert asyncio.run(ledger.apply_catalog(changed)) == 2
    after = ledger.catalog_snapshot_now()
    assert after.version == 2
    assert after.catalog.sellers[0].name == "Renamed"
    assert after.catalog.sellers[0].access_keys == before.catalog.sellers[0].access_keys
    assert after.products["prod-legacy"] == dataclasses.replace(
        legacy, dimensions=("api_calls", "seats"), name="Legacy", registration_url="x"
    )
    assert after.products["prod-new"].dimensions == ("b", "a")  # declared order, not sorted
    assert after.products["prod-new"].integration is Integration.CONCURRENT_AGREEMENTS
    assert after.agreements_by_license[ALICE_LEGACY] == Agreement(
        ALICE_LEGACY, ALICE, "prod-legacy", AgreementState.SUSPENDED, 1577836800.0, HOUR + 0.5, True
    )
    untouched = [p for p in after.catalog.products if p.product_code not in {"prod-legacy"}]
    assert [p for p in untouched if p.product_code != "prod-new"] == [
        p for p in before.catalog.products if p.product_code != "prod-legacy"
    ]
    assert after.catalog.buyers == before.catalog.buyers


def test_catalog_changes_by_another_store_refresh_the_snapshot(
    store_url: str, open_test_store: OpenStore
) -> None:
    server = open_test_store(store_url)
    cli = open_test_store(store_url)
    cli.apply_catalog_now(load_catalog_file(CATALOG))
    before = server.catalog_snapshot_now()
    assert "prod-legacy" in before.products
    extra = load_catalog(
        "buyers: [{account_id: '121212121212', customer_identifier: cust-new}]",
        existing=before.catalog,
    )
    cli.apply_catalog_now(extra)
    after = server.catalog_snapshot_now()
    assert after.version == before.version + 1
    assert after.buyers_by_customer_identifier["cust-new"].account_id == "121212121212"
    assert server.catalog_snapshot_now() is after  # unchanged version: cached


# --- the ledger -------------------------------------------------------------------------------


def test_insert_is_the_duplicate_check(ledger: OperatorStore) -> None:
    first = asyncio.run(ledger.bill([entry(1, 5, attempt="a"), entry(1, 5, attempt="b")]))
    again = asyncio.run(ledger.bill([entry(1, 6, attempt="c")]))
    assert outcomes(first) + outcomes(again) == [
        ("id-1-5a", 5, True),
        ("id-1-5a", 5, False),
        ("id-1-5a", 5, False),
    ]
    assert len(ledger.usage_now(UsageQuery())) == 1


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        pytest.param(5, [("id-1-5a", 5, True), ("id-1-5a", 5, False)], id="same-quantity"),
        pytest.param(6, [("id-1-5a", 5, True), ("id-1-5a", 5, False)], id="other-quantity"),
    ],
)
def test_a_key_twice_in_one_batch_is_inserted_once(
    ledger: OperatorStore, second: int, expected: list[tuple[str, int, bool]]
) -> None:
    found = asyncio.run(ledger.bill([entry(1, 5, attempt="a"), entry(1, second, attempt="b")]))
    assert outcomes(found) == expected
    [row] = ledger.usage_now(UsageQuery())
    assert (row.metering_record_id, row.quantity) == ("id-1-5a", Decimal(5))


def test_inserted_is_false_for_an_entry_repeating_the_billed_id(
    ledger: OperatorStore, backend: str, request: pytest.FixtureRequest
) -> None:
    """``inserted`` says whether *this* entry was written, whatever ids the entries carry."""
    first = asyncio.run(ledger.bill([entry(1, 5), entry(1, 5)]))
    again = asyncio.run(ledger.bill([entry(1, 5)]))
    assert outcomes(first) + outcomes(again) == [
        ("id-1-5", 5, True),
        ("id-1-5", 5, False),
        ("id-1-5", 5, False),
    ]


def test_a_new_key_next_to_a_replay_carrying_the_billed_id_is_still_inserted(
    ledger: OperatorStore,
) -> None:
    asyncio.run(ledger.bill([entry(1, 5)]))
    found = asyncio.run(ledger.bill([entry(1, 5), entry(2, 7), entry(2, 7, attempt="b")]))
    assert outcomes(found) == [("id-1-5", 5, False), ("id-2-7", 7, True), ("id-2-7", 7, False)]


def test_a_large_batch_is_billed_whole(ledger: OperatorStore) -> None:
    """More rows than one statement of the SQLite backend takes (500)."""
    entries = [entry(n, 2) for n in range(1, 1202)]
    found = asyncio.run(ledger.bill([*entries, entry(7, 3)]))
    assert [o.inserted for o in found] == [True] * 1201 + [False]
    assert (found[-1].metering_record_id, found[-1].quantity_micros) == ("id-7-2", 2_000_000)
    assert len(ledger.usage_now(UsageQuery(limit=5000))) == 1201


def test_billing_no_entries_returns_no_outcomes(
    ledger: OperatorStore, backend: str, request: pytest.FixtureRequest
) -> None:
    assert asyncio.run(ledger.bill([])) == []


def test_outcomes_follow_the_request_order(ledger: OperatorStore) -> None:
    asyncio.run(ledger.bill([entry(1, 1, attempt="a"), entry(3, 3, attempt="a")]))
    found = asyncio.run(
        ledger.bill(
            [
                entry(4, 4, attempt="b"),
                entry(3, 3, attempt="b"),
                entry(2, 2, attempt="b"),
                entry(1, 9, attempt="b"),
                entry(0, 1, attempt="b"),
                entry(2, 7, attempt="c"),
            ]
        )
    )
    assert outcomes(found) == [
        ("id-4-4b", 4, True),
        ("id-3-3a", 3, False),
        ("id-2-2b", 2, True),
        ("id-1-1a", 1, False),
        ("id-0-1b", 1, True),
        ("id-2-2b", 2, False),
    ]
    assert len(ledger.usage_now(UsageQuery())) == 5


def test_each_part_of_the_key_separates_records(ledger: OperatorStore) -> None:
    base = entry(1, attempt="-base")
    variants = [
        dataclasses.replace(base, hour=base.hour + 3600, metering_record_id="hour"),
        dataclasses.replace(base, scope="license:arn", metering_record_id="scope"),
        dataclasses.replace(base, customer_account="000000000009", metering_record_id="acct"),
        dataclasses.replace(base, dimension="seats", metering_record_id="dimension"),
        dataclasses.replace(base, product_code="q", metering_record_id="product"),  # not key
    ]
    found = asyncio.run(ledger.bill([base, *variants]))
    assert [(o.metering_record_id, o.inserted) for o in found] == [
        ("id-1-1-base", True),
        ("hour", True),
        ("scope", True),
        ("acct", True),
        ("dimension", True),
        ("id-1-1-base", False),
    ]


def test_billed_records_keep_every_field(store: OperatorStore) -> None:
    allocations = (
        UsageAllocation(None, (Tag("team", "a"), Tag("env", "prod")), quantity_decimal="1.25"),
        UsageAllocation(2, None),
    )
    record = UsageRecord(
        timestamp=HOUR + 59.75,
        dimension="requests",
        quantity_decimal="3.250000",
        customer_aws_account_id=ALICE,
        license_arn=ALICE_CA,
        allocations=allocations,
    )
    billed = LedgerEntry(
        hour=HOUR,
        scope=f"license:{ALICE_CA}",
        customer_account=ALICE,
        dimension="requests",
        quantity_micros=3_250_000,
        metering_record_id="rec-1",
        product_code="prod-ca",
        record=record,
        received_at=HOUR + 61.125,
    )
    huge = dataclasses.replace(
        meter_entry(record_id="rec-2"), quantity_micros=9_000_000_000_000_000_000
    )
    assert outcomes(asyncio.run(store.bill([billed]))) == [("rec-1", 3, True)]
    assert outcomes(asyncio.run(store.bill([huge]))) == [("rec-2", 9_000_000_000_000, True)]
    assert asyncio.run(store.usage(UsageQuery())) == [
        BilledRecord(
            metering_record_id="rec-1",
            product_code="prod-ca",
            customer_aws_account_id=ALICE,
            customer_identifier=None,
            license_arn=ALICE_CA,
            dimension="requests",
            quantity=Decimal("3.25"),
            usage_timestamp=HOUR + 59.75,
            hour=HOUR,
            allocations=[
                {
                    "quantity": 1.25,
                    "tags": [{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}],
                },
                {"quantity": 2, "tags": []},
            ],
            received_at=HOUR + 61.125,
        ),
        BilledRecord(
            metering_record_id="rec-2",
            product_code="prod-ami",
            customer_aws_account_id=ALICE,
            customer_identifier="cust-alice",
            license_arn=ALICE_AMI,
            dimension="vcpu_hours",
            quantity=Decimal(9_000_000_000_000),
            usage_timestamp=HOUR + 60,
            hour=HOUR,
            allocations=None,
            received_at=HOUR + 61.5,
            operation="MeterUsage",
            instance="i-1",
        ),
    ]


def test_usage_is_filtered_ordered_and_limited(store: OperatorStore) -> None:
    asyncio.run(
        store.bill(
            [
                usage_entry("late", HOUR + 7200.5),
                usage_entry("early", HOUR + 10),
                usage_entry("bob", HOUR + 20, account=BOB),
                usage_entry("api", HOUR + 10, dimension="api_calls"),  # same time as "early"
                usage_entry("ca", HOUR + 3600, product="prod-ca", dimension="requests"),
                usage_entry("mid", HOUR + 3599.5, dimension="seats"),
            ]
        )
    )

    def ids(**query: object) -> list[str]:
        found = store.usage_now(UsageQuery(**query))  # type: ignore[arg-type]
        assert asyncio.run(store.usage(UsageQuery(**query))) == found  # type: ignore[arg-type]
        return [r.metering_record_id for r in found]

    assert ids() == ["early", "api", "bob", "mid", "ca", "late"]
    assert ids(product_code="prod-ca") == ["ca"]
    assert ids(customer=BOB) == ["bob"]
    assert ids(customer="cust-bob") == ["bob"]  # a CustomerIdentifier stands for its account
    assert ids(customer="cust-nobody") == []
    assert ids(dimension="api_calls") == ["api"]
    assert ids(start=HOUR + 20) == ["bob", "mid", "ca", "late"]  # inclusive
    assert ids(start=HOUR + 3599.5, end=HOUR + 7200.5) == ["mid", "ca"]  # end exclusive
    assert ids(end=HOUR + 10) == []
    assert ids(end=HOUR + 3600) == ["early", "api", "bob", "mid"]
    assert ids(limit=2) == ["early", "api"]
    assert ids(customer=ALICE, dimension="users", product_code="prod-legacy") == [
        "early",
        "late",
    ]


def test_a_batch_may_mix_int_and_float_timestamps(
    store: OperatorStore, backend: str, request: pytest.FixtureRequest
) -> None:
    """A record's timestamp is kept as received, ``int`` or ``float``; one batch may hold both
    (the JS SDK sends ``1795435260`` for a whole second and ``1795435260.5`` otherwise)."""
    whole = dataclasses.replace(
        usage_entry("whole", HOUR + 10),
        record=UsageRecord(timestamp=HOUR + 10, dimension="users", quantity=1),
    )
    fractional = usage_entry("fractional", HOUR + 20.5, account=BOB)
    assert outcomes(asyncio.run(store.bill([whole, fractional]))) == [
        ("whole", 1, True),
        ("fractional", 1, True),
    ]
    rows = store.usage_now(UsageQuery())
    assert [(r.metering_record_id, r.usage_timestamp) for r in rows] == [
        ("whole", HOUR + 10),
        ("fractional", HOUR + 20.5),
    ]


def test_billed_reads_the_entrys_key(store: OperatorStore) -> None:
    assert asyncio.run(store.billed(meter_entry())) is None
    asyncio.run(store.bill([meter_entry(quantity=5, record_id="id-1")]))
    expected = LedgerOutcome("id-1", 5_000_000, inserted=False)
    assert asyncio.run(store.billed(meter_entry(quantity=7, record_id="id-9"))) == expected
    assert asyncio.run(store.billed(meter_entry(scope="instance:prod-ami|i-2"))) is None
    assert asyncio.run(store.billed(meter_entry(account=BOB))) is None
    assert len(asyncio.run(store.usage(UsageQuery()))) == 1  # billed writes nothing


def test_meter_usage_rows_keep_operation_and_instance(store: OperatorStore) -> None:
    asyncio.run(
        store.bill(
            [
                meter_entry(quantity=5),
                meter_entry("instance:prod-ami|key", 1, "id-2", instance=None),
            ]
        )
    )
    rows = asyncio.run(store.usage(UsageQuery()))
    assert [(r.metering_record_id, r.operation, r.instance) for r in rows] == [
        ("id-1", "MeterUsage", "i-1"),
        ("id-2", "MeterUsage", None),
    ]


def test_concurrent_billing_from_many_threads_stores_each_key_once(ledger: OperatorStore) -> None:
    answers: list[tuple[int, LedgerOutcome]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def client(worker: int) -> None:
        start.wait()
        for n in range(50):
            # every worker bills the same 50 keys, half with a conflicting quantity
            [outcome] = asyncio.run(ledger.bill([entry(n, 1 + worker % 2, attempt=f"w{worker}")]))
            with lock:
                answers.append((n, outcome))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = ledger.usage_now(UsageQuery(limit=1000))
    assert len(rows) == 50
    assert len(answers) == 400
    stored = {int(r.customer_aws_account_id): (r.metering_record_id, r.quantity) for r in rows}
    for n, outcome in answers:
        assert (outcome.metering_record_id, Decimal(outcome.quantity_micros) / 10**6) == stored[n]
    inserted = sorted(n for n, outcome in answers if outcome.inserted)
    assert inserted == list(range(50))  # exactly one winner per key


def test_acknowledged_rows_survive_close_and_reopen(
    store_url: str, open_test_store: OpenStore
) -> None:
    store = open_test_store(store_url)
    asyncio.run(store.bill([entry(n) for n in range(25)]))
    store.close_now()
    reopened = open_test_store(store_url)
    assert len(reopened.usage_now(UsageQuery())) == 25
    again = asyncio.run(reopened.bill([entry(3, attempt="retry")]))
    assert (again[0].metering_record_id, again[0].inserted) == ("id-3-1", False)


# --- registration tokens ----------------------------------------------------------------------


def value(n: int) -> str:
    return f"tok{n:061d}"


def token(
    n: int,
    product: str = "prod-legacy",
    buyer: str = ALICE,
    license_arn: str = ALICE_LEGACY,
    issued_at: float = 1000.0,
    offer_type: str | None = None,
) -> RegistrationToken:
    return RegistrationToken(value(n), product, buyer, license_arn, issued_at, offer_type)


def test_issued_tokens_are_read_back(store: OperatorStore) -> None:
    trial = token(2, "prod-ca", license_arn=ALICE_CA, issued_at=1000.5, offer_type="free-trial")
    asyncio.run(store.issue_tokens([token(1), trial]))
    asyncio.run(store.issue_tokens([]))
    assert asyncio.run(store.registration_token(value(1))) == token(1)
    assert asyncio.run(store.registration_token(value(2))) == trial
    assert asyncio.run(store.registration_token(value(3))) is None


def test_a_token_value_is_issued_once_and_a_refused_issue_stores_nothing(
    store: OperatorStore, backend: str
) -> None:
    asyncio.run(store.issue_tokens([token(1)]))
    with pytest.raises(UNIQUE_VIOLATION[backend]):
        asyncio.run(store.issue_tokens([token(2), token(1, "prod-ca", license_arn=ALICE_CA)]))
    assert asyncio.run(store.registration_token(value(1))) == token(1)
    assert (
        asyncio.run(store.registration_token(value(2))) is None
    )  # one transaction: all or nothing
    asyncio.run(store.issue_tokens([token(3)]))  # the store still works
    assert [t.value for t in asyncio.run(store.registration_tokens(TokenQuery()))] == [
        value(3),
        value(1),
    ]


def test_catalog_apply_issues_its_tokens_in_the_same_transaction(store: OperatorStore) -> None:
    agreement = Agreement(
        "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001",
        "555566667777",
        "prod-legacy",
    )
    issued = token(9, buyer="555566667777", license_arn=agreement.license_arn)
    assert store.apply_catalog_now(Catalog(agreements=(agreement,)), [issued]) == 2
    assert asyncio.run(store.registration_token(value(9))) == issued


def test_a_catalog_apply_with_a_refused_token_changes_nothing(
    store: OperatorStore, backend: str
) -> None:
    asyncio.run(store.issue_tokens([token(1)]))
    before = store.catalog_snapshot_now()
    agreement = Agreement(
        "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001",
        "555566667777",
        "prod-legacy",
    )
    with pytest.raises(UNIQUE_VIOLATION[backend]):
        store.apply_catalog_now(Catalog(agreements=(agreement,)), [token(1)])
    after = store.catalog_snapshot_now()
    assert after.version == before.version
    assert agreement.license_arn not in after.agreements_by_license


def test_token_lists_are_filtered_newest_first_and_limited(store: OperatorStore) -> None:
    tokens = [
        token(1, issued_at=100),
        token(2, "prod-ca", license_arn=ALICE_CA, issued_at=300),
        token(3, buyer=BOB, license_arn=BOB_LEGACY, issued_at=200),
        token(4, issued_at=300),  # same time as 2, issued after it
        token(5, buyer=BOB, license_arn=BOB_LEGACY, issued_at=50),
    ]
    asyncio.run(store.issue_tokens(tokens[:3]))
    asyncio.run(store.issue_tokens(tokens[3:]))

    def listed(**query: object) -> list[str]:
        found = asyncio.run(store.registration_tokens(TokenQuery(**query)))  # type: ignore[arg-type]
        return [t.value for t in found]

    assert listed() == [value(4), value(2), value(3), value(1), value(5)]
    assert listed(product_code="prod-legacy") == [value(4), value(3), value(1), value(5)]
    assert listed(buyer_account_id=BOB) == [value(3), value(5)]
    assert listed(product_code="prod-legacy", buyer_account_id=ALICE) == [value(4), value(1)]
    assert listed(product_code="prod-ca", buyer_account_id=BOB) == []
    assert listed(limit=2) == [value(4), value(2)]
    assert listed(buyer_account_id=BOB, limit=1) == [value(3)]
    assert asyncio.run(store.registration_tokens(TokenQuery(buyer_account_id=BOB))) == [
        tokens[2],
        tokens[4],
    ]


def test_tokens_of_one_issue_at_one_time_list_last_issued_first(store: OperatorStore) -> None:
    asyncio.run(store.issue_tokens([token(n, issued_at=500.0) for n in (7, 3, 9, 1)]))
    found = asyncio.run(store.registration_tokens(TokenQuery()))
    assert [t.value for t in found] == [value(1), value(9), value(3), value(7)]


# --- signing keys -----------------------------------------------------------------------------


def key(version: int, created_at: float = 100.0, retired_at: float | None = None) -> SigningKey:
    return SigningKey(version, f"private-{version}", f"public-{version}", created_at, retired_at)


def test_signing_keys_start_empty_and_keep_their_fields(store: OperatorStore) -> None:
    assert asyncio.run(store.signing_keys()) == []
    assert asyncio.run(store.add_signing_key(key(1, 100.5), None)) is True
    assert asyncio.run(store.signing_keys()) == [key(1, 100.5)]


def test_a_version_is_added_once(store: OperatorStore) -> None:
    assert asyncio.run(store.add_signing_key(key(1), None)) is True
    other = SigningKey(1, "other-private", "other-public", 999.0)
    assert asyncio.run(store.add_signing_key(other, retire_previous_at=999.0)) is False
    assert asyncio.run(store.signing_keys()) == [key(1)]


def test_retire_previous_at_retires_every_older_live_version(store: OperatorStore) -> None:
    asyncio.run(store.add_signing_key(key(1), None))
    asyncio.run(store.add_signing_key(key(2, 200.0), None))  # no retirement asked
    assert [k.retired_at for k in asyncio.run(store.signing_keys())] == [None, None]
    asyncio.run(store.add_signing_key(key(3, 300.0), retire_previous_at=300.0))
    asyncio.run(store.add_signing_key(key(4, 400.0), retire_previous_at=400.0))
    assert asyncio.run(store.signing_keys()) == [
        key(1, 100.0, 300.0),
        key(2, 200.0, 300.0),
        key(3, 300.0, 400.0),
        key(4, 400.0, None),
    ]


def test_a_refused_version_retires_nothing(store: OperatorStore) -> None:
    asyncio.run(store.add_signing_key(key(1), None))
    asyncio.run(store.add_signing_key(key(2), None))
    assert asyncio.run(store.add_signing_key(key(2), retire_previous_at=500.0)) is False
    assert [k.retired_at for k in asyncio.run(store.signing_keys())] == [None, None]


def test_signing_keys_are_listed_by_version(store: OperatorStore) -> None:
    asyncio.run(store.add_signing_key(key(3), None))
    asyncio.run(store.add_signing_key(key(1), None))
    asyncio.run(store.add_signing_key(key(2), None))
    assert [k.version for k in asyncio.run(store.signing_keys())] == [1, 2, 3]


def test_signing_keys_survive_reopening(
    store_url: str, store: OperatorStore, open_test_store: OpenStore
) -> None:
    asyncio.run(store.add_signing_key(key(1), None))
    reopened = open_test_store(store_url)
    assert asyncio.run(reopened.signing_keys()) == [key(1)]


# --- container registrations ------------------------------------------------------------------


def test_container_registration_first_one_is_kept(store: OperatorStore) -> None:
    def read(product: str, buyer: str, task: str) -> ContainerRegistration | None:
        return asyncio.run(store.container_registration(product, buyer, task))

    assert read("prod-container", ALICE, "task-1") is None
    first = ContainerRegistration("prod-container", ALICE, "task-1", 100.0)
    asyncio.run(store.register_container(first))
    asyncio.run(
        store.register_container(ContainerRegistration("prod-container", ALICE, "task-1", 200.0))
    )
    assert read("prod-container", ALICE, "task-1") == first
    assert read("prod-container", ALICE, "task-2") is None
    assert read("prod-container", BOB, "task-1") is None
    assert read("prod-other", ALICE, "task-1") is None
    second = ContainerRegistration("prod-container", BOB, "task-1", 300.0)
    asyncio.run(store.register_container(second))
    assert read("prod-container", BOB, "task-1") == second


# --- ClientToken claims -----------------------------------------------------------------------


def claim(token_: str, fingerprint: str, record_id: str, account: str = ALICE) -> RequestClaim:
    return RequestClaim(account, token_, fingerprint, record_id, created_at=HOUR + 61.5)


def test_first_claim_wins_and_bills_once(store: OperatorStore) -> None:
    assert asyncio.run(store.claim(ALICE, "tok-1")) is None
    first = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-a", "id-1"), meter_entry("request:prod-agent|tok-1", 2, "id-1")
        )
    )
    assert first == RequestClaimOutcome("id-1", "fp-a", inserted=True)
    again = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-b", "id-2"), meter_entry("request:prod-agent|tok-1", 3, "id-2")
        )
    )
    assert again == RequestClaimOutcome("id-1", "fp-a", inserted=False)
    assert asyncio.run(store.claim(ALICE, "tok-1")) == RequestClaimOutcome(
        "id-1", "fp-a", inserted=False
    )
    rows = asyncio.run(store.usage(UsageQuery()))
    assert [(r.metering_record_id, r.quantity) for r in rows] == [("id-1", Decimal(2))]


def test_claims_are_per_account(store: OperatorStore) -> None:
    asyncio.run(
        store.bill_claim(claim("tok-1", "fp-a", "id-1"), meter_entry("request:p|tok-1", 1, "id-1"))
    )
    bob = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-b", "id-2", account=BOB),
            meter_entry("request:p|tok-1", 1, "id-2", account=BOB),
        )
    )
    assert bob == RequestClaimOutcome("id-2", "fp-b", inserted=True)
    assert asyncio.run(store.claim(BOB, "tok-1")) == RequestClaimOutcome("id-2", "fp-b", False)
    assert asyncio.run(store.claim(ALICE, "tok-1")) == RequestClaimOutcome("id-1", "fp-a", False)
    assert asyncio.run(store.claim(ALICE, "tok-2")) is None
    assert len(asyncio.run(store.usage(UsageQuery()))) == 2
