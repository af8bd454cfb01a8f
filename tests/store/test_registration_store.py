"""The SQLite store's registration and MeterUsage state (schema version 2): registration tokens,
signing keys, container registrations, ClientToken claims, the ledger read ``billed``, and the
upgrade of a version-1 database to version 2 with its rows kept."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import marketmeter.store.migrations
from marketmeter.catalog.loader import load_catalog_file
from marketmeter.catalog.model import Agreement, AgreementState, Catalog
from marketmeter.metering.types import (
    ContainerRegistration,
    LedgerEntry,
    LedgerOutcome,
    RegistrationToken,
    RequestClaim,
    RequestClaimOutcome,
    SigningKey,
    UsageRecord,
)
from marketmeter.store.base import TokenQuery, UsageQuery
from marketmeter.store.sqlite import SQLiteStore

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"
MIGRATIONS = Path(marketmeter.store.migrations.__file__).parent
HOUR = 1795435200  # 2026-11-23T12:00:00Z
ALICE = "444455556666"
BOB = "777788889999"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    ledger = SQLiteStore(tmp_path / "ledger.db")
    ledger.apply_catalog_now(load_catalog_file(CATALOG))
    try:
        yield ledger
    finally:
        ledger.close_now()


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


def entry(
    scope: str = "instance:prod-ami|i-1",
    quantity: int = 1,
    record_id: str = "id-1",
    account: str = ALICE,
    instance: str | None = "i-1",
) -> LedgerEntry:
    record = UsageRecord(
        timestamp=HOUR + 60,
        dimension="vcpu_hours",
        quantity=quantity,
        customer_identifier="cust-alice",
        customer_aws_account_id=account,
        license_arn="arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000003",
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


def key(version: int, created_at: float = 100.0, retired_at: float | None = None) -> SigningKey:
    return SigningKey(version, f"private-{version}", f"public-{version}", created_at, retired_at)


# --- registration tokens -----------------------------------------------------------------------


def test_issued_tokens_are_read_back(store: SQLiteStore) -> None:
    trial = token(2, "prod-ca", license_arn=ALICE_CA, issued_at=1000.5, offer_type="free-trial")
    asyncio.run(store.issue_tokens([token(1), trial]))
    assert asyncio.run(store.registration_token(value(1))) == token(1)
    assert asyncio.run(store.registration_token(value(2))) == trial
    assert asyncio.run(store.registration_token(value(3))) is None


def test_a_token_value_is_issued_once(store: SQLiteStore) -> None:
    asyncio.run(store.issue_tokens([token(1)]))
    with pytest.raises(sqlite3.IntegrityError):
        asyncio.run(store.issue_tokens([token(1, "prod-ca", license_arn=ALICE_CA)]))
    assert asyncio.run(store.registration_token(value(1))) == token(1)


def test_catalog_apply_issues_its_tokens_in_the_same_transaction(store: SQLiteStore) -> None:
    agreement = Agreement(
        "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001",
        "555566667777",
        "prod-legacy",
    )
    issued = token(9, buyer="555566667777", license_arn=agreement.license_arn)
    store.apply_catalog_now(Catalog(agreements=(agreement,)), [issued])
    assert asyncio.run(store.registration_token(value(9))) == issued


def test_token_lists_are_filtered_newest_first_and_limited(store: SQLiteStore) -> None:
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


# --- signing keys ------------------------------------------------------------------------------


def test_signing_keys_start_empty_and_keep_their_fields(store: SQLiteStore) -> None:
    assert asyncio.run(store.signing_keys()) == []
    assert asyncio.run(store.add_signing_key(key(1, 100.5), None)) is True
    assert asyncio.run(store.signing_keys()) == [key(1, 100.5)]


def test_a_version_is_added_once(store: SQLiteStore) -> None:
    assert asyncio.run(store.add_signing_key(key(1), None)) is True
    other = SigningKey(1, "other-private", "other-public", 999.0)
    assert asyncio.run(store.add_signing_key(other, retire_previous_at=999.0)) is False
    assert asyncio.run(store.signing_keys()) == [key(1)]


def test_retire_previous_at_retires_every_older_live_version(store: SQLiteStore) -> None:
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


def test_a_refused_version_retires_nothing(store: SQLiteStore) -> None:
    asyncio.run(store.add_signing_key(key(1), None))
    asyncio.run(store.add_signing_key(key(2), None))
    assert asyncio.run(store.add_signing_key(key(2), retire_previous_at=500.0)) is False
    assert [k.retired_at for k in asyncio.run(store.signing_keys())] == [None, None]


def test_signing_keys_are_listed_by_version(store: SQLiteStore) -> None:
    asyncio.run(store.add_signing_key(key(3), None))
    asyncio.run(store.add_signing_key(key(1), None))
    asyncio.run(store.add_signing_key(key(2), None))
    assert [k.version for k in asyncio.run(store.signing_keys())] == [1, 2, 3]


def test_signing_keys_survive_reopening(store: SQLiteStore) -> None:
    asyncio.run(store.add_signing_key(key(1), None))
    reopened = SQLiteStore(store.path)
    try:
        assert asyncio.run(reopened.signing_keys()) == [key(1)]
    finally:
        reopened.close_now()


# --- container registrations ---------------------------------------------------------------------


def test_container_registration_first_one_is_kept(store: SQLiteStore) -> None:
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


# --- ClientToken claims ------------------------------------------------------------------------


def claim(token_: str, fingerprint: str, record_id: str, account: str = ALICE) -> RequestClaim:
    return RequestClaim(account, token_, fingerprint, record_id, created_at=HOUR + 61.5)


def test_first_claim_wins_and_bills_once(store: SQLiteStore) -> None:
    assert asyncio.run(store.claim(ALICE, "tok-1")) is None
    first = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-a", "id-1"), entry("request:prod-agent|tok-1", 2, "id-1")
        )
    )
    assert first == RequestClaimOutcome("id-1", "fp-a", inserted=True)
    again = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-b", "id-2"), entry("request:prod-agent|tok-1", 3, "id-2")
        )
    )
    assert again == RequestClaimOutcome("id-1", "fp-a", inserted=False)
    assert asyncio.run(store.claim(ALICE, "tok-1")) == RequestClaimOutcome(
        "id-1", "fp-a", inserted=False
    )
    rows = asyncio.run(store.usage(UsageQuery()))
    assert [(r.metering_record_id, r.quantity) for r in rows] == [("id-1", Decimal(2))]


def test_claims_are_per_account(store: SQLiteStore) -> None:
    asyncio.run(
        store.bill_claim(claim("tok-1", "fp-a", "id-1"), entry("request:p|tok-1", 1, "id-1"))
    )
    bob = asyncio.run(
        store.bill_claim(
            claim("tok-1", "fp-b", "id-2", account=BOB),
            entry("request:p|tok-1", 1, "id-2", account=BOB),
        )
    )
    assert bob == RequestClaimOutcome("id-2", "fp-b", inserted=True)
    assert asyncio.run(store.claim(BOB, "tok-1")) == RequestClaimOutcome("id-2", "fp-b", False)
    assert asyncio.run(store.claim(ALICE, "tok-1")) == RequestClaimOutcome("id-1", "fp-a", False)
    assert asyncio.run(store.claim(ALICE, "tok-2")) is None
    assert len(asyncio.run(store.usage(UsageQuery()))) == 2


# --- the ledger read and MeterUsage rows ---------------------------------------------------------


def test_billed_reads_the_entrys_key(store: SQLiteStore) -> None:
    assert asyncio.run(store.billed(entry())) is None
    asyncio.run(store.bill([entry(quantity=5, record_id="id-1")]))
    expected = LedgerOutcome("id-1", 5_000_000, inserted=False)
    assert asyncio.run(store.billed(entry(quantity=7, record_id="id-9"))) == expected
    assert asyncio.run(store.billed(entry(scope="instance:prod-ami|i-2"))) is None
    assert asyncio.run(store.billed(entry(account=BOB))) is None
    assert len(asyncio.run(store.usage(UsageQuery()))) == 1  # billed writes nothing


def test_meter_usage_rows_keep_operation_and_instance(store: SQLiteStore) -> None:
    asyncio.run(
        store.bill([entry(quantity=5), entry("instance:prod-ami|key", 1, "id-2", instance=None)])
    )
    rows = asyncio.run(store.usage(UsageQuery()))
    assert [(r.metering_record_id, r.operation, r.instance) for r in rows] == [
        ("id-1", "MeterUsage", "i-1"),
        ("id-2", "MeterUsage", None),
    ]


# --- migration from schema version 1 -------------------------------------------------------------


def test_a_version_1_database_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    connection = sqlite3.connect(path)
    try:
        connection.executescript((MIGRATIONS / "0001_initial.sqlite.sql").read_text())
        connection.executescript(
            """
            CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL);
            INSERT INTO schema_migrations VALUES (1, 'initial', 1.0);
            INSERT INTO sellers VALUES ('111122223333', 'Seller');
            INSERT INTO products (product_code, seller_account_id, kind, integration)
                VALUES ('prod-legacy', '111122223333', 'saas', 'legacy');
            INSERT INTO dimensions VALUES ('prod-legacy', 'users', 0);
            INSERT INTO buyers VALUES ('444455556666', 'cust-alice', 'Alice');
            UPDATE catalog_state SET version = 7;
            INSERT INTO usage_records (hour, scope, customer_account, dimension, quantity_micros,
                metering_record_id, product_code, license_arn, customer_identifier,
                usage_timestamp, allocations, received_at)
                VALUES (1795435200, 'product:prod-legacy', '444455556666', 'users', 3000000,
                    'old-id', 'prod-legacy', NULL, 'cust-alice', 1795435260, NULL, 1795435261);
            """
        )
        connection.execute(
            "INSERT INTO agreements VALUES (?, ?, 'prod-legacy', 'subscribed', 0, NULL)",
            (ALICE_LEGACY, ALICE),
        )
        connection.commit()
    finally:
        connection.close()

    store = SQLiteStore(path)
    try:
        with sqlite3.connect(path) as check:
            versions = check.execute("SELECT version, name FROM schema_migrations").fetchall()
        check.close()
        assert versions == [(1, "initial"), (2, "registration")]
        snapshot = store.catalog_snapshot_now()
        assert snapshot.version == 7
        assert snapshot.agreements_by_license[ALICE_LEGACY] == Agreement(
            ALICE_LEGACY, ALICE, "prod-legacy", AgreementState.SUBSCRIBED, 0.0, None, False
        )
        assert snapshot.buyers[ALICE].customer_identifier == "cust-alice"
        [row] = asyncio.run(store.usage(UsageQuery()))
        assert (row.metering_record_id, row.quantity, row.operation, row.instance) == (
            "old-id",
            Decimal(3),
            "BatchMeterUsage",
            None,
        )
        # the version-2 tables work
        asyncio.run(store.issue_tokens([token(1)]))
        assert asyncio.run(store.registration_token(value(1))) == token(1)
        assert asyncio.run(store.add_signing_key(key(1), None)) is True
    finally:
        store.close_now()

    SQLiteStore(path).close_now()  # opening again applies nothing more
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM schema_migrations").fetchone() == (2,)
    check.close()
