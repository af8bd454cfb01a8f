"""The test bench's store part, on every backend: resetting the ledger (keeping or dropping the
catalog) and named snapshots of the whole state (save, list, restore, delete).

Each test runs on SQLite and on PostgreSQL (``store`` / ``store_url`` of tests/conftest.py).
``seed`` gives every state table rows: billed records (one with allocations, two sharing a
timestamp so that their order is the insertion order), a ClientToken claim, a registered task,
a signing key and two tokens issued in the same second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from decimal import Decimal

import pytest

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.catalog.model import Catalog, Product, ProductKind
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
from marketmeter.store.base import (
    BilledRecord,
    OperatorStore,
    SnapshotError,
    SnapshotInfo,
    TokenQuery,
    UsageQuery,
)
from marketmeter.store.snapshots_sql import STATE_TABLES
from marketmeter.store.sql_connection import SqlConnection
from tests.conftest import CATALOG, OpenStore
from tests.raw_sql import raw_read, raw_write

postgresql = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)

HOUR = 1795435200  # 2026-11-23T12:00:00Z
ALICE = "444455556666"
BOB = "777788889999"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
ALICE_AGENT = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000004"

# The catalog of tests/data/catalog.yaml, in rows per table.
CATALOG_COUNTS = {
    "sellers": 2,
    "access_keys": 4,
    "products": 6,
    "dimensions": 7,
    "notification_urls": 0,
    "buyers": 7,
    "agreements": 16,
}
SEEDED_COUNTS = {
    **CATALOG_COUNTS,
    "registration_tokens": 2,
    "signing_keys": 1,
    "container_registrations": 1,
    "request_claims": 1,
    "usage_records": 4,
    # the lifecycle event log (tests/store/test_events_sql.py saves and restores its rows)
    "lifecycle_events": 0,
    "event_deliveries": 0,
    "delivery_attempts": 0,
}

EVERYTHING = UsageQuery(limit=100_000)
TASK = ContainerRegistration("prod-container", ALICE, "task-1", HOUR + 7.25)
KEY_1 = SigningKey(1, "private-1", "public-1", HOUR + 0.5)
TOKENS = (
    RegistrationToken("tok-b", "prod-legacy", ALICE, ALICE_LEGACY, HOUR + 1.0),
    RegistrationToken("tok-a", "prod-legacy", BOB, BOB_LEGACY, HOUR + 1.0, "free-trial"),
)


def billing(
    record_id: str,
    account: str = ALICE,
    dimension: str = "users",
    timestamp: float = HOUR + 60.125,
    micros: int = 1_000_000,
    allocations: tuple[UsageAllocation, ...] | None = None,
) -> LedgerEntry:
    """A BatchMeterUsage row of prod-legacy (its key: the hour, ``account`` and
    ``dimension``)."""
    return LedgerEntry(
        hour=int(timestamp // 3600) * 3600,
        scope="product:prod-legacy",
        customer_account=account,
        dimension=dimension,
        quantity_micros=micros,
        metering_record_id=record_id,
        product_code="prod-legacy",
        record=UsageRecord(
            timestamp=timestamp,
            dimension=dimension,
            quantity=micros // 1_000_000,
            customer_identifier=f"cust-{account}",
            allocations=allocations,
        ),
        received_at=timestamp + 0.75,
    )


def metering(record_id: str, task: str = "task-9") -> LedgerEntry:
    """A MeterUsage row of the per-request product prod-agent."""
    record = UsageRecord(
        timestamp=HOUR + 120,
        dimension="invocations",
        quantity=1,
        customer_aws_account_id=ALICE,
        license_arn=ALICE_AGENT,
    )
    return LedgerEntry(
        hour=HOUR,
        scope=f"request:{task}",
        customer_account=ALICE,
        dimension="invocations",
        quantity_micros=1_000_000,
        metering_record_id=record_id,
        product_code="prod-agent",
        record=record,
        received_at=HOUR + 121.5,
        operation="MeterUsage",
        instance=task,
    )


def claim(client_token: str, record_id: str) -> RequestClaim:
    return RequestClaim(ALICE, client_token, f"fp-{client_token}", record_id, HOUR + 121.5)


SEEDED_ENTRIES = (
    billing(
        "id-alice-users",
        micros=2_500_000,
        allocations=(
            UsageAllocation(None, (Tag("team", "a"), Tag("env", "prod")), quantity_decimal="1.5"),
            UsageAllocation(1, None),
        ),
    ),
    # billed after alice's users but with the same timestamp: the usage view orders them by
    # insertion (seq), which a restore must keep
    billing("id-bob-users", account=BOB),
    billing("id-alice-calls", dimension="api_calls", timestamp=HOUR + 30.0, micros=7_000_000),
)


def seed(store: OperatorStore) -> None:
    """Give every state table rows (SEEDED_COUNTS)."""
    outcomes = asyncio.run(store.bill(SEEDED_ENTRIES))
    assert [o.inserted for o in outcomes] == [True, True, True]
    claimed = asyncio.run(store.bill_claim(claim("ct-1", "id-claimed"), metering("id-claimed")))
    assert claimed.inserted is True
    asyncio.run(store.register_container(TASK))
    assert asyncio.run(store.add_signing_key(KEY_1, None)) is True
    asyncio.run(store.issue_tokens(TOKENS))


@dataclasses.dataclass(frozen=True)
class State:
    """Everything a store shows of its state, through the Store contract."""

    usage: list[BilledRecord]
    tokens: list[RegistrationToken]
    keys: list[SigningKey]
    catalog: Catalog
    claim: RequestClaimOutcome | None
    task: ContainerRegistration | None


def state(store: OperatorStore) -> State:
    return State(
        usage=asyncio.run(store.usage(EVERYTHING)),
        tokens=asyncio.run(store.registration_tokens(TokenQuery())),
        keys=asyncio.run(store.signing_keys()),
        catalog=asyncio.run(store.catalog_snapshot()).catalog,
        claim=asyncio.run(store.claim(ALICE, "ct-1")),
        task=asyncio.run(store.container_registration("prod-container", ALICE, "task-1")),
    )


def ids(records: Sequence[BilledRecord]) -> list[str]:
    return [record.metering_record_id for record in records]


def outcomes(found: list[LedgerOutcome]) -> list[tuple[str, int, bool]]:
    return [(o.metering_record_id, o.quantity_micros, o.inserted) for o in found]


def count(store: OperatorStore, table: str) -> int:
    def rows(sql: SqlConnection) -> int:
        return int(sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    return raw_read(store, rows)


def stored_size(store: OperatorStore, name: str) -> int:
    """The bytes of snapshot ``name``'s data, as stored."""

    def size(sql: SqlConnection) -> int:
        return int(
            sql.execute("SELECT length(data) FROM snapshots WHERE name = ?", (name,)).fetchone()[0]
        )

    return raw_read(store, size)


# --- reset ------------------------------------------------------------------------------------


def test_reset_keeping_the_catalog_empties_the_ledger_only(store: OperatorStore) -> None:
    seed(store)
    before = state(store)

    deleted = asyncio.run(store.reset(drop_catalog=False))

    assert deleted == {"usage_records": 4, "request_claims": 1, "container_registrations": 1}
    after = state(store)
    assert (after.usage, after.claim, after.task) == ([], None, None)
    assert (after.tokens, after.keys, after.catalog) == (before.tokens, before.keys, before.catalog)
    assert asyncio.run(store.catalog_snapshot()).version == 1  # the catalog did not change
    # the same record bills again, under a new id; the ClientToken is free again
    again = asyncio.run(
        store.bill([dataclasses.replace(SEEDED_ENTRIES[0], metering_record_id="n1")])
    )
    assert outcomes(again) == [("n1", 2_500_000, True)]
    reclaimed = asyncio.run(store.bill_claim(claim("ct-1", "n2"), metering("n2")))
    assert reclaimed == RequestClaimOutcome("n2", "fp-ct-1", inserted=True)
    assert ids(asyncio.run(store.usage(EVERYTHING))) == ["n1", "n2"]
    assert asyncio.run(store.reset(drop_catalog=False)) == {
        "usage_records": 2,
        "request_claims": 1,
        "container_registrations": 0,
    }


def test_reset_dropping_the_catalog_keeps_only_the_signing_keys(store: OperatorStore) -> None:
    seed(store)
    assert store.catalog_snapshot_now().version == 1

    deleted = asyncio.run(store.reset(drop_catalog=True))

    assert deleted == {
        "usage_records": 4,
        "request_claims": 1,
        "container_registrations": 1,
        "registration_tokens": 2,
        "agreements": 16,
        "buyers": 7,
        "notification_urls": 0,
        "dimensions": 7,
        "products": 6,
        "access_keys": 4,
        "sellers": 2,
    }
    after = state(store)
    assert (after.usage, after.tokens, after.claim, after.task) == ([], [], None, None)
    assert after.keys == [KEY_1]
    snapshot = asyncio.run(store.catalog_snapshot())
    assert (snapshot.version, snapshot.catalog, len(snapshot.products)) == (2, Catalog(), 0)
    assert asyncio.run(store.registration_token("tok-a")) is None
    # a catalog applies again, and bills
    catalog = load_catalog_file(CATALOG)
    assert store.apply_catalog_now(catalog, TOKENS) == 3
    assert len(store.catalog_snapshot_now().agreements_by_license) == 16
    assert asyncio.run(store.registration_tokens(TokenQuery())) == list(reversed(TOKENS))
    assert outcomes(asyncio.run(store.bill(SEEDED_ENTRIES[:1]))) == [
        ("id-alice-users", 2_500_000, True)
    ]


# --- save and restore -------------------------------------------------------------------------


def test_a_restore_brings_back_exactly_the_saved_state(store: OperatorStore) -> None:
    seed(store)
    saved = state(store)
    assert ids(saved.usage) == ["id-alice-calls", "id-alice-users", "id-bob-users", "id-claimed"]
    assert saved.usage[1].allocations == [
        {"quantity": 1.5, "tags": [{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}]},
        {"quantity": 1, "tags": []},
    ]
    assert [t.value for t in saved.tokens] == ["tok-a", "tok-b"]  # same second: newest first

    info = asyncio.run(store.save_snapshot("baseline", 1000.5))

    assert info == SnapshotInfo("baseline", 1000.5, SEEDED_COUNTS, stored_size(store, "baseline"))
    # everything changes afterwards: records, claims, tasks, keys, tokens and the catalog
    asyncio.run(store.bill([billing("id-later", account=BOB, dimension="api_calls")]))
    asyncio.run(store.bill_claim(claim("ct-2", "id-claimed-2"), metering("id-claimed-2", "t-2")))
    asyncio.run(store.register_container(dataclasses.replace(TASK, task="task-2")))
    asyncio.run(store.add_signing_key(SigningKey(2, "private-2", "public-2", HOUR + 9.0), HOUR))
    asyncio.run(store.issue_tokens([dataclasses.replace(TOKENS[0], value="tok-c")]))
    renamed = dataclasses.replace(saved.catalog.sellers[0], name="Renamed")
    extra = Product("prod-new", renamed.account_id, ProductKind.SAAS, ("seats",))
    assert store.apply_catalog_now(Catalog(sellers=(renamed,), products=(extra,))) == 2
    assert store.catalog_snapshot_now().version == 2  # this store's cache holds version 2
    assert count(store, "usage_records") == 6

    restored = asyncio.run(store.restore_snapshot("baseline"))

    assert restored == info
    assert state(store) == saved
    snapshot = asyncio.run(store.catalog_snapshot())
    assert snapshot.version == 3  # max(2 now, 1 saved) + 1: every node's cache reloads
    assert "prod-new" not in snapshot.products
    assert asyncio.run(store.claim(ALICE, "ct-2")) is None
    assert asyncio.run(store.container_registration("prod-container", ALICE, "task-2")) is None
    assert asyncio.run(store.registration_token("tok-c")) is None
    assert count(store, "usage_records") == 4
    # an identical retry gets the saved id; new keys bill after the restored records
    retry = dataclasses.replace(SEEDED_ENTRIES[0], metering_record_id="would-be-new")
    assert outcomes(asyncio.run(store.bill([retry]))) == [("id-alice-users", 2_500_000, False)]
    again = asyncio.run(store.bill_claim(claim("ct-1", "other"), metering("other")))
    assert again == RequestClaimOutcome("id-claimed", "fp-ct-1", inserted=False)
    fresh = [billing(f"new-{n}", account=f"{n:012d}") for n in range(5)]
    assert [o.inserted for o in asyncio.run(store.bill(fresh))] == [True] * 5
    assert asyncio.run(store.bill([billing("new-5", account="000000000005")]))[0].inserted
    # same timestamp as two restored records: listed after them, by insertion order
    assert ids(asyncio.run(store.usage(EVERYTHING))) == [
        "id-alice-calls",
        "id-alice-users",
        "id-bob-users",
        *[f"new-{n}" for n in range(6)],
        "id-claimed",
    ]


def test_another_node_serves_the_restored_catalog(
    store: OperatorStore, store_url: str, open_test_store: OpenStore
) -> None:
    seed(store)
    saved = state(store)
    asyncio.run(store.save_snapshot("s", 1.0))
    other = open_test_store(store_url)  # a second node on the same database
    asyncio.run(store.reset(drop_catalog=True))
    assert other.catalog_snapshot_now().catalog == Catalog()  # the other node's cache: version 2

    asyncio.run(store.restore_snapshot("s"))

    snapshot = asyncio.run(other.catalog_snapshot())
    assert (snapshot.version, snapshot.catalog) == (3, saved.catalog)
    assert state(other) == saved


def test_a_restore_after_dropping_the_catalog_brings_it_back(store: OperatorStore) -> None:
    seed(store)
    saved = state(store)
    asyncio.run(store.save_snapshot("s", 1.0))
    asyncio.run(store.reset(drop_catalog=True))
    assert store.catalog_snapshot_now().version == 2

    assert asyncio.run(store.restore_snapshot("s")) is not None

    assert state(store) == saved
    assert store.catalog_snapshot_now().version == 3
    assert {table: count(store, table) for table in SEEDED_COUNTS} == SEEDED_COUNTS


def test_snapshots_are_listed_by_name_replaced_and_deleted(store: OperatorStore) -> None:
    seed(store)
    first = asyncio.run(store.save_snapshot("alpha", 10.0))
    asyncio.run(store.bill([billing("id-later", account=BOB, dimension="api_calls")]))
    zeta = asyncio.run(store.save_snapshot("Zeta", 12.0))
    dotted = asyncio.run(store.save_snapshot("beta.1", 13.0))
    dashed = asyncio.run(store.save_snapshot("beta-2", 14.0))

    replaced = asyncio.run(store.save_snapshot("alpha", 20.25))

    assert first.counts["usage_records"] == 4
    assert replaced.counts == {**SEEDED_COUNTS, "usage_records": 5}
    assert replaced.size_bytes > 0
    # by name, in code point order on both backends
    assert asyncio.run(store.snapshots()) == [zeta, replaced, dashed, dotted]
    assert [(i.name, i.created_at) for i in asyncio.run(store.snapshots())] == [
        ("Zeta", 12.0),
        ("alpha", 20.25),
        ("beta-2", 14.0),
        ("beta.1", 13.0),
    ]
    assert asyncio.run(store.delete_snapshot("alpha")) is True
    assert asyncio.run(store.delete_snapshot("alpha")) is False
    assert asyncio.run(store.restore_snapshot("alpha")) is None
    assert asyncio.run(store.restore_snapshot("never-saved")) is None
    assert [i.name for i in asyncio.run(store.snapshots())] == ["Zeta", "beta-2", "beta.1"]
    assert count(store, "snapshots") == 3


def test_the_replacing_snapshot_is_the_one_restored(store: OperatorStore) -> None:
    seed(store)
    asyncio.run(store.save_snapshot("s", 1.0))
    asyncio.run(store.bill([billing("id-later", account=BOB, dimension="api_calls")]))
    asyncio.run(store.save_snapshot("s", 2.0))
    asyncio.run(store.reset(drop_catalog=False))

    restored = asyncio.run(store.restore_snapshot("s"))

    assert restored is not None
    assert (restored.created_at, restored.counts["usage_records"]) == (2.0, 5)
    assert "id-later" in ids(asyncio.run(store.usage(EVERYTHING)))


def test_snapshots_survive_a_reset_and_keep_their_own_rows(store: OperatorStore) -> None:
    seed(store)
    info = asyncio.run(store.save_snapshot("s", 1.0))
    asyncio.run(store.reset(drop_catalog=True))
    assert asyncio.run(store.snapshots()) == [info]


def test_an_empty_state_saves_and_restores(store_url: str, open_test_store: OpenStore) -> None:
    empty = open_test_store(store_url)
    info = asyncio.run(empty.save_snapshot("nothing", 5.0))
    assert info.counts == dict.fromkeys(SEEDED_COUNTS, 0)
    empty.apply_catalog_now(load_catalog_file(CATALOG))
    seed(empty)

    assert asyncio.run(empty.restore_snapshot("nothing")) == info

    assert {table: count(empty, table) for table in SEEDED_COUNTS} == info.counts
    snapshot = empty.catalog_snapshot_now()
    assert (snapshot.version, snapshot.catalog) == (2, Catalog())


def test_a_snapshot_of_another_schema_version_is_refused(store: OperatorStore) -> None:
    seed(store)
    asyncio.run(store.save_snapshot("old", 1.0))
    asyncio.run(store.bill([billing("id-later", account=BOB, dimension="api_calls")]))

    def taken_under_version_2(sql: SqlConnection) -> None:
        sql.execute("UPDATE snapshots SET schema_version = 2 WHERE name = 'old'")

    raw_write(store, taken_under_version_2)

    with pytest.raises(SnapshotError) as raised:
        asyncio.run(store.restore_snapshot("old"))

    assert str(raised.value) == (
        "snapshot 'old' was taken under schema version 2; this database is at schema version 5"
    )
    assert count(store, "usage_records") == 5  # nothing was touched
    assert store.catalog_snapshot_now().version == 1


def test_a_snapshot_survives_closing_and_reopening(
    store_url: str, open_test_store: OpenStore
) -> None:
    first = open_test_store(store_url)
    first.apply_catalog_now(load_catalog_file(CATALOG))
    seed(first)
    saved = state(first)
    info = asyncio.run(first.save_snapshot("kept", 42.5))
    asyncio.run(first.reset(drop_catalog=True))
    first.close_now()

    reopened = open_test_store(store_url)

    assert asyncio.run(reopened.snapshots()) == [info]
    assert asyncio.run(reopened.restore_snapshot("kept")) == info
    assert state(reopened) == saved


def test_quantities_and_times_round_trip_exactly(store: OperatorStore) -> None:
    odd = billing(
        "id-odd",
        account=BOB,
        dimension="api_calls",
        timestamp=HOUR + 1 / 3,  # every bit of the float's mantissa in use
        micros=9_007_199_254_740_993,  # 2**53 + 1: not a float
    )
    asyncio.run(store.bill([odd]))
    asyncio.run(store.add_signing_key(SigningKey(1, "p", "q", 1 / 3, 2 / 3), None))
    saved = state(store)
    asyncio.run(store.save_snapshot("s", 1 / 7))
    asyncio.run(store.reset(drop_catalog=True))

    restored = asyncio.run(store.restore_snapshot("s"))

    assert restored is not None
    assert restored.created_at == 1 / 7
    assert state(store) == saved
    [record] = asyncio.run(store.usage(EVERYTHING))
    assert (record.quantity, record.usage_timestamp, record.received_at) == (
        Decimal("9007199254.740993"),
        HOUR + 1 / 3,
        HOUR + 1 / 3 + 0.75,
    )
    assert asyncio.run(store.signing_keys()) == [SigningKey(1, "p", "q", 1 / 3, 2 / 3)]


@postgresql
def test_postgresql_seq_moves_past_the_restored_records(store: OperatorStore) -> None:
    seed(store)
    asyncio.run(store.save_snapshot("s", 1.0))

    def restart_sequence(sql: SqlConnection) -> None:
        # as if the snapshot held seq values the sequence has not reached
        sql.execute("ALTER TABLE usage_records ALTER COLUMN seq RESTART WITH 1")

    raw_write(store, restart_sequence)
    asyncio.run(store.restore_snapshot("s"))

    fresh = [billing(f"new-{n}", account=f"{n:012d}") for n in range(6)]
    assert [o.inserted for o in asyncio.run(store.bill(fresh))] == [True] * 6

    def seqs(sql: SqlConnection) -> list[tuple[str, int]]:
        rows = sql.execute("SELECT metering_record_id, seq FROM usage_records ORDER BY seq")
        return [(row[0], row[1]) for row in rows.fetchall()]

    assert [record_id for record_id, _ in raw_read(store, seqs)] == [
        "id-alice-users",
        "id-bob-users",
        "id-alice-calls",
        "id-claimed",
        *[f"new-{n}" for n in range(6)],
    ]
    assert [seq for _, seq in raw_read(store, seqs)][:5] == [1, 2, 3, 4, 5]


def test_a_snapshot_holds_every_table_and_column_of_the_schema(
    store: OperatorStore, backend: str
) -> None:
    """A migration adding a table or a column must add it to the snapshots too."""

    def columns(sql: SqlConnection) -> dict[str, set[str]]:
        if backend == "sqlite":
            names = [
                row[0]
                for row in sql.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
            ]
            return {
                name: {row[1] for row in sql.execute(f"PRAGMA table_info({name})").fetchall()}
                for name in names
            }
        found: dict[str, set[str]] = {}
        for table, column in sql.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall():
            found.setdefault(table, set()).add(column)
        return found

    schema = raw_read(store, columns)
    # not state: the migrations applied, the catalog version (moved, never restored as is),
    # the snapshots themselves
    assert set(schema) - set(STATE_TABLES) == {"catalog_state", "schema_migrations", "snapshots"}
    # PostgreSQL's registration_tokens.seq only orders the tokens; rows are restored in it
    held = {"registration_tokens": {"seq"}} if backend == "postgresql" else {}
    assert {table: schema[table] - held.get(table, set()) for table in STATE_TABLES} == {
        table: set(table_columns) for table, (table_columns, _) in STATE_TABLES.items()
    }


# --- size -------------------------------------------------------------------------------------


@pytest.mark.timing
def test_twenty_thousand_records_save_and_restore_in_seconds(store: OperatorStore) -> None:
    entries = [
        billing(f"id-{n}", account=f"{n:012d}", timestamp=HOUR + (n % 3600) + 0.5)
        for n in range(20_000)
    ]
    for start in range(0, len(entries), 5000):
        asyncio.run(store.bill(entries[start : start + 5000]))
    saved = asyncio.run(store.usage(EVERYTHING))

    started = time.perf_counter()
    info = asyncio.run(store.save_snapshot("big", 1.0))
    saving = time.perf_counter() - started
    asyncio.run(store.reset(drop_catalog=True))
    started = time.perf_counter()
    asyncio.run(store.restore_snapshot("big"))
    restoring = time.perf_counter() - started

    print(f"\n20,000 records: save {saving:.2f} s, restore {restoring:.2f} s, {info.size_bytes} B")
    assert saving < 5
    assert restoring < 5
    assert info.counts["usage_records"] == 20_000
    assert asyncio.run(store.usage(EVERYTHING)) == saved
    more = [billing(f"more-{n}", account=f"{n:012d}", timestamp=HOUR + 7200.5) for n in range(3)]
    assert [o.inserted for o in asyncio.run(store.bill(more))] == [True, True, True]
