"""What only the PostgreSQL store has: migrations applied once under an advisory lock by nodes
starting together, a newer schema refused, a version-1 database upgraded, ``synchronous_commit``
forced on, and the ledger's decisions holding between several nodes (stores with their own pools
on one database) billing the same keys and ClientTokens at once. The behaviour every backend
shares is the contract suite, test_store_contract.py (which runs on PostgreSQL too).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from marketmeter.catalog.model import Agreement, AgreementState
from marketmeter.metering.types import (
    LedgerEntry,
    LedgerOutcome,
    RegistrationToken,
    RequestClaim,
    RequestClaimOutcome,
    SigningKey,
    UsageRecord,
)
from marketmeter.store.base import OperatorStore, SchemaError, UsageQuery
from marketmeter.store.migrations import migrations_for, statements
from marketmeter.store.open import open_store
from marketmeter.store.postgres import PostgresStore
from tests.conftest import OpenStore
from tests.postgres_server import PostgresServer
from tests.store.ledger_keys import HOUR, entry

ALICE = "444455556666"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"

postgresql = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def query(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on its own autocommit connection; its rows (none for a statement)."""
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def lock_waits(url: str) -> int:
    """How many sessions on ``url``'s database wait for a lock."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    [(count,)] = query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (name,),
    )
    return int(count)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def hold_keys(url: str, *keys: int) -> psycopg.Connection[Any]:
    """Another node's transaction that inserted ``keys`` (ids ``held-<n>``, quantity 7) and has
    neither committed nor rolled back yet: a writer of the same keys waits for it."""
    connection = psycopg.connect(url)
    for n in keys:
        connection.execute(
            "INSERT INTO usage_records (hour, scope, customer_account, dimension, "
            "quantity_micros, metering_record_id, product_code, usage_timestamp, received_at) "
            "VALUES (%s, 'product:p', %s, 'users', 7000000, %s, 'p', %s, %s)",
            (HOUR, f"{n:012d}", f"held-{n}", HOUR + 1.0, HOUR + 2.0),
        )
    return connection


class Threads:
    """Calls run in threads released together; each call's result or exception is kept."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.errors: list[BaseException] = []
        self._calls: list[Callable[[], Any]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def add(self, call: Callable[[], Any]) -> None:
        self._calls.append(call)

    def start(self) -> None:
        release = threading.Barrier(len(self._calls))

        def body(call: Callable[[], Any]) -> None:
            release.wait()
            try:
                result = call()
            except BaseException as error:
                with self._lock:
                    self.errors.append(error)
            else:
                with self._lock:
                    self.results.append(result)

        self._threads = [threading.Thread(target=body, args=(call,)) for call in self._calls]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float = 60.0) -> list[Any]:
        """The results once every call finished; the first exception if a call raised one."""
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a call did not finish"
        if self.errors:
            raise self.errors[0]
        return self.results

    def run(self) -> list[Any]:
        self.start()
        return self.join()


# --- migrations -------------------------------------------------------------------------------


@postgresql
def test_a_fresh_database_gets_the_newest_schema_and_reopening_applies_nothing(
    store_url: str, open_test_store: OpenStore
) -> None:
    open_test_store(store_url).close_now()
    first = query(store_url, "SELECT version, name, applied_at FROM schema_migrations")
    assert [(v, n) for v, n, _ in first] == [
        (1, "initial"),
        (2, "registration"),
        (3, "snapshots"),
        (4, "lifecycle"),
        (5, "delivery_targets"),
        (6, "entitlements"),
        (7, "offers"),
        (8, "catalog_digest"),
    ]
    assert [v for v, _, _ in first] == [m.version for m in migrations_for("postgresql")]
    open_test_store(store_url).close_now()
    assert query(store_url, "SELECT version, name, applied_at FROM schema_migrations") == first


@postgresql
def test_a_newer_schema_is_refused_and_its_connections_closed(
    store_url: str, open_test_store: OpenStore
) -> None:
    open_test_store(store_url).close_now()
    query(store_url, "INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(SchemaError) as raised:
        open_test_store(store_url)
    assert str(raised.value) == (
        "the database is at schema version 999, newer than this marketmeter "
        f"(knows up to {migrations_for('postgresql')[-1].version}); "
        "upgrade marketmeter"
    )
    name = psycopg.conninfo.conninfo_to_dict(store_url)["dbname"]

    def sessions() -> int:
        rows = query(
            store_url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        return int(rows[0][0])

    wait_for(lambda: sessions() == 0)


@postgresql
def test_nodes_starting_together_apply_the_migrations_once(
    store_url: str, open_test_store: OpenStore
) -> None:
    threads = Threads()
    for _ in range(6):
        threads.add(lambda: open_test_store(store_url))
    stores: list[OperatorStore] = threads.run()
    assert len(stores) == 6
    assert query(store_url, "SELECT version, name FROM schema_migrations ORDER BY version") == [
        (1, "initial"),
        (2, "registration"),
        (3, "snapshots"),
        (4, "lifecycle"),
        (5, "delivery_targets"),
        (6, "entitlements"),
        (7, "offers"),
        (8, "catalog_digest"),
    ]
    billed = [
        asyncio.run(store.bill([entry(1, record_id=f"n{i}")])) for i, store in enumerate(stores)
    ]
    assert [outcome.inserted for [outcome] in billed] == [True, False, False, False, False, False]


@postgresql
def test_a_version_1_database_is_upgraded_and_keeps_its_rows(
    store_url: str, open_test_store: OpenStore
) -> None:
    [initial] = [m for m in migrations_for("postgresql") if m.version == 1]
    with psycopg.connect(store_url, autocommit=True) as connection:
        for statement in statements(initial.sql):
            connection.execute(statement)
        connection.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        connection.execute("INSERT INTO schema_migrations VALUES (1, 'initial', 1.0)")
        connection.execute("INSERT INTO sellers VALUES ('111122223333', 'Seller')")
        connection.execute(
            "INSERT INTO products (product_code, seller_account_id, kind, integration) "
            "VALUES ('prod-legacy', '111122223333', 'saas', 'legacy')"
        )
        connection.execute("INSERT INTO buyers VALUES (%s, 'cust-alice', 'Alice')", (ALICE,))
        connection.execute(
            "INSERT INTO agreements VALUES (%s, %s, 'prod-legacy', 'subscribed', 0, NULL)",
            (ALICE_LEGACY, ALICE),
        )
        connection.execute("UPDATE catalog_state SET version = 7")
        connection.execute(
            "INSERT INTO usage_records (hour, scope, customer_account, dimension, "
            "quantity_micros, metering_record_id, product_code, usage_timestamp, received_at) "
            "VALUES (%s, 'product:prod-legacy', %s, 'users', 3000000, 'old-id', 'prod-legacy', "
            "%s, %s)",
            (HOUR, ALICE, HOUR + 60.0, HOUR + 61.0),
        )
    store = open_test_store(store_url)
    assert query(store_url, "SELECT version, name FROM schema_migrations ORDER BY version") == [
        (1, "initial"),
        (2, "registration"),
        (3, "snapshots"),
        (4, "lifecycle"),
        (5, "delivery_targets"),
        (6, "entitlements"),
        (7, "offers"),
        (8, "catalog_digest"),
    ]
    snapshot = store.catalog_snapshot_now()
    assert snapshot.version == 7
    assert snapshot.buyers[ALICE].customer_identifier == "cust-alice"
    assert snapshot.agreements_by_license[ALICE_LEGACY] == Agreement(
        ALICE_LEGACY, ALICE, "prod-legacy", AgreementState.SUBSCRIBED, 0.0, None, False
    )
    [row] = store.usage_now(UsageQuery())
    assert (row.metering_record_id, row.quantity, row.operation, row.instance) == (
        "old-id",
        Decimal(3),
        "BatchMeterUsage",
        None,
    )
    # the key still deduplicates across the upgrade, and the version-2 tables work
    again = asyncio.run(store.bill([old_row_key(), entry(2)]))
    assert [(o.metering_record_id, o.inserted) for o in again] == [
        ("old-id", False),
        ("id-2-1", True),
    ]
    token = RegistrationToken("tok-1", "prod-legacy", ALICE, ALICE_LEGACY, 1000.0)
    asyncio.run(store.issue_tokens([token]))
    assert asyncio.run(store.registration_token("tok-1")) == token
    assert asyncio.run(store.add_signing_key(SigningKey(1, "priv", "pub", 100.0), None)) is True


def old_row_key() -> LedgerEntry:
    """An entry with the key of the version-1 row of the upgrade test."""
    return LedgerEntry(
        hour=HOUR,
        scope="product:prod-legacy",
        customer_account=ALICE,
        dimension="users",
        quantity_micros=3_000_000,
        metering_record_id="retry-id",
        product_code="prod-legacy",
        record=UsageRecord(timestamp=HOUR + 60.0, dimension="users", quantity=3),
        received_at=HOUR + 90.0,
    )


# --- connections ------------------------------------------------------------------------------


@postgresql
def test_commits_are_synchronous_even_where_the_database_says_otherwise(
    store_url: str, open_test_store: OpenStore
) -> None:
    name = psycopg.conninfo.conninfo_to_dict(store_url)["dbname"]
    query(store_url, f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    store = open_test_store(store_url)
    assert isinstance(store, PostgresStore)
    with store._pool.connection() as connection:
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)
    port = psycopg.conninfo.conninfo_to_dict(store_url)["port"]
    assert store.describe() == f"PostgreSQL 127.0.0.1:{port}/{name} (synchronous_commit=on)"


@postgresql
def test_the_postgres_scheme_opens_the_same_database(
    store_url: str, open_test_store: OpenStore
) -> None:
    asyncio.run(open_test_store(store_url).bill([entry(1)]))
    alias = open_test_store("postgres://" + store_url.removeprefix("postgresql://"))
    assert isinstance(alias, PostgresStore)
    assert [r.metering_record_id for r in alias.usage_now(UsageQuery())] == ["id-1-1"]


def test_an_unreachable_server_is_a_schema_error() -> None:
    started = time.monotonic()
    with pytest.raises(SchemaError) as raised:
        open_store("postgresql://postgres@127.0.0.1:1/x")
    assert str(raised.value).startswith("cannot connect to PostgreSQL: "), str(raised.value)
    assert time.monotonic() - started < 20


def test_a_missing_database_is_a_schema_error(postgres_server: PostgresServer) -> None:
    url = postgres_server.url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(SchemaError) as raised:
        open_store(url)
    message = str(raised.value)
    assert message.startswith("cannot connect to PostgreSQL: "), message
    assert 'database "no_such_database" does not exist' in message


@postgresql
@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT version FROM catalog_state WHERE id = 1", "catalog_state_pkey"),
        (
            "SELECT metering_record_id, quantity_micros FROM usage_records "
            "WHERE hour = 1 AND scope = 'p' AND customer_account = 'c' AND dimension = 'd'",
            "usage_records_dedupe",
        ),
        (
            "SELECT metering_record_id, fingerprint FROM request_claims "
            "WHERE customer_account = 'a' AND client_token = 't'",
            "request_claims_pkey",
        ),
        ("SELECT * FROM registration_tokens WHERE token = 't'", "registration_tokens_pkey"),
    ],
)
def test_request_path_queries_can_use_an_index(
    store_url: str, open_test_store: OpenStore, sql: str, index: str
) -> None:
    open_test_store(store_url).close_now()
    with psycopg.connect(store_url, autocommit=True) as connection:
        connection.execute("SET enable_seqscan = off")
        plan = " ".join(row[0] for row in connection.execute(f"EXPLAIN {sql}").fetchall())
    assert f"using {index}" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- the ledger between nodes -----------------------------------------------------------------


@postgresql
def test_the_dedupe_holds_between_two_nodes_billing_the_same_keys(
    store_url: str, open_test_store: OpenStore
) -> None:
    """8 workers on 2 nodes each bill keys 0..39 in batches of 5 (in key order), as identical
    retries (same quantity) and conflicting ones (another quantity), every attempt with its
    own MeteringRecordId."""
    nodes = [open_test_store(store_url), open_test_store(store_url)]
    answers: list[tuple[LedgerEntry, LedgerOutcome]] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        node = nodes[number % 2]
        for first in range(0, 40, 5):
            batch = [
                entry(n, 1 + number % 3, record_id=f"w{number}-k{n}")
                for n in range(first, first + 5)
            ]
            found = asyncio.run(node.bill(batch))
            with lock:
                answers.extend(zip(batch, found, strict=True))

    threads = Threads()
    for number in range(8):
        threads.add(functools.partial(worker, number))
    threads.run()

    rows = nodes[0].usage_now(UsageQuery(limit=1000))
    assert sorted(int(r.customer_aws_account_id) for r in rows) == list(range(40))
    held = {int(r.customer_aws_account_id): r for r in rows}
    assert len(answers) == 8 * 40
    by_key: dict[int, list[tuple[LedgerEntry, LedgerOutcome]]] = defaultdict(list)
    for sent, outcome in answers:
        by_key[int(sent.customer_account)].append((sent, outcome))
    for n, attempts in by_key.items():
        row = held[n]
        assert len(attempts) == 8
        assert {o.metering_record_id for _, o in attempts} == {row.metering_record_id}
        assert {o.quantity_micros for _, o in attempts} == {int(row.quantity * 1_000_000)}
        winners = [sent for sent, o in attempts if o.inserted]
        assert len(winners) == 1, n
        assert winners[0].metering_record_id == row.metering_record_id
        assert winners[0].quantity_micros == int(row.quantity * 1_000_000)


@postgresql
@pytest.mark.parametrize(
    ("other_node_commits", "expected"),
    [
        pytest.param(True, ("held-1", 7_000_000, False), id="commits"),
        pytest.param(False, ("mine", 1_000_000, True), id="rolls-back"),
    ],
)
def test_a_key_another_node_is_writing_waits_for_its_outcome(
    store_url: str,
    open_test_store: OpenStore,
    other_node_commits: bool,
    expected: tuple[str, int, bool],
) -> None:
    """The other node's row is committed after this batch's statement began (so its snapshot
    does not see it) or rolled back: the batch answers with what the ledger then holds."""
    store = open_test_store(store_url)
    other = hold_keys(store_url, 1)
    try:
        threads = Threads()
        threads.add(lambda: asyncio.run(store.bill([entry(0), entry(1, record_id="mine")])))
        threads.start()
        wait_for(lambda: lock_waits(store_url) == 1)
        if other_node_commits:
            other.commit()
        else:
            other.rollback()
        [found] = threads.join()
    finally:
        other.close()
    assert [(o.metering_record_id, o.quantity_micros, o.inserted) for o in found] == [
        ("id-0-1", 1_000_000, True),
        expected,
    ]


@postgresql
def test_batches_with_the_same_keys_in_other_orders_do_not_deadlock(
    store_url: str, open_test_store: OpenStore
) -> None:
    """Node a bills keys 1, 8, 2 and node b keys 2, 9, 1. A third transaction holding 8 and 9
    makes both wait after their first key; then it rolls back and both go on."""
    a, b = open_test_store(store_url), open_test_store(store_url)
    other = hold_keys(store_url, 8, 9)
    threads = Threads()
    threads.add(lambda: ("a", asyncio.run(a.bill([entry(1, 1, "a1"), entry(8), entry(2)]))))
    threads.add(lambda: ("b", asyncio.run(b.bill([entry(2, 2, "b2"), entry(9), entry(1)]))))
    try:
        threads.start()
        wait_for(lambda: lock_waits(store_url) == 2)
        other.rollback()
        answers = dict(threads.join())
    finally:
        other.close()
    rows = {r.customer_aws_account_id[-1]: r.metering_record_id for r in a.usage_now(UsageQuery())}
    assert sorted(rows) == ["1", "2", "8", "9"]
    inserted = [o.inserted for o in answers["a"]] + [o.inserted for o in answers["b"]]
    assert inserted.count(True) == 4  # 1, 2 once each, 8 and 9
    assert answers["a"][0].metering_record_id == rows["1"]
    assert answers["b"][2].metering_record_id == rows["1"]
    assert answers["a"][2].metering_record_id == rows["2"]
    assert answers["b"][0].metering_record_id == rows["2"]


# --- ClientToken claims between nodes ---------------------------------------------------------


@postgresql
def test_a_client_token_is_claimed_once_between_two_nodes(
    store_url: str, open_test_store: OpenStore
) -> None:
    nodes = [open_test_store(store_url), open_test_store(store_url)]

    def attempt(number: int, token: str) -> tuple[str, RequestClaim, RequestClaimOutcome]:
        record_id = f"{token}-w{number}"
        claim = RequestClaim(ALICE, token, f"fp-{number}", record_id, HOUR + 61.0)
        billed = LedgerEntry(
            hour=HOUR,
            scope=f"request:prod-agent|{token}",
            customer_account=ALICE,
            dimension="invocations",
            quantity_micros=(1 + number) * 1_000_000,
            metering_record_id=record_id,
            product_code="prod-agent",
            record=UsageRecord(timestamp=HOUR + 60.0, dimension="invocations", quantity=1),
            received_at=HOUR + 61.0,
            operation="MeterUsage",
            instance="i-1",
        )
        return token, claim, asyncio.run(nodes[number % 2].bill_claim(claim, billed))

    threads = Threads()
    for number in range(8):
        for token in ("tok-a", "tok-b", "tok-c"):
            threads.add(functools.partial(attempt, number, token))
    answers: list[tuple[str, RequestClaim, RequestClaimOutcome]] = threads.run()

    rows = nodes[1].usage_now(UsageQuery())
    assert len(rows) == 3
    for token in ("tok-a", "tok-b", "tok-c"):
        mine = [(claim, outcome) for t, claim, outcome in answers if t == token]
        assert len(mine) == 8
        [winner] = [claim for claim, outcome in mine if outcome.inserted]
        assert {(o.metering_record_id, o.fingerprint) for _, o in mine} == {
            (winner.metering_record_id, winner.fingerprint)
        }
        stored = asyncio.run(nodes[0].claim(ALICE, token))
        assert stored == RequestClaimOutcome(
            winner.metering_record_id, winner.fingerprint, inserted=False
        )
        [row] = [r for r in rows if r.metering_record_id == winner.metering_record_id]
        assert row.quantity == Decimal(int(winner.fingerprint.removeprefix("fp-")) + 1)
