"""Three ``marketmeter serve`` nodes on one PostgreSQL database (always, whatever
``MARKETMETER_TEST_DB`` says), raced by concurrent boto3 clients spread round-robin over them.

For a set of BatchMeterUsage keys (customer, dimension, hour) several clients send identical
retries and others conflicting quantities through all three nodes at once; so do MeterUsage
calls for one instance and hour, and per-request MeterUsage calls with one ClientToken. The
shared ledger must then hold exactly one record per key, under the one MeteringRecordId every
Success answer for that key carried, with every other answer a refusal of a different quantity.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from marketmeter.store.open import open_store
from tests.e2e.buyers import ALICE_KEY, admin, buyer_client
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.postgres_server import shared_server

pytestmark = pytest.mark.e2e

NODES = 3
WORKERS = 12
ROUNDS = 30  # every BatchMeterUsage key is sent once per round
HOURS = 4
CLIENT_CONFIG = {"max_pool_connections": WORKERS * 2, "read_timeout": 30}


@dataclass(frozen=True, slots=True)
class Key:
    """A BatchMeterUsage ledger key: product, customer, dimension and (the hour of) a time."""

    product: str
    customer: str  # CustomerIdentifier for prod-legacy, the AWS account id for prod-ca
    dimension: str
    timestamp: int

    def record(self, quantity: int) -> dict[str, Any]:
        field = "CustomerIdentifier" if self.product == "prod-legacy" else "CustomerAWSAccountId"
        return {
            "Timestamp": self.timestamp,
            field: self.customer,
            "Dimension": self.dimension,
            "Quantity": quantity,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """One verdict: what was sent for a key, and the status and id it got."""

    key: Key | str  # a BatchMeterUsage key, a MeterUsage instance or ClientToken
    node: int
    quantity: int
    status: str  # Success, DuplicateRecord, or a MeterUsage error code
    record_id: str | None


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three nodes on one fresh PostgreSQL database, started one after the other."""
    url = shared_server().fresh_database()
    started: list[ServerProcess] = []
    try:
        for n in range(NODES):
            started.append(ServerProcess(tmp_path / f"node{n}.db", CATALOG, db_url=url).start())
        yield started
    finally:
        for node in started:
            node.stop()


def batch_keys(now: int) -> list[Key]:
    """24 keys: two customers of prod-legacy on two dimensions and two of prod-ca, each in
    the last four hours (inside the 6-hour window)."""
    hours = [now - h * 3600 for h in range(HOURS)]
    legacy = [
        Key("prod-legacy", customer, dimension, t)
        for customer in ("cust-alice", "cust-bob")
        for dimension in ("users", "api_calls")
        for t in hours
    ]
    ca = [
        Key("prod-ca", account, "requests", t)
        for account in ("444455556666", "777788889999")
        for t in hours
    ]
    return legacy + ca


def variant(base: int, send: int) -> int:
    """The quantity of a key's ``send``-th copy: mostly identical retries, some conflicting."""
    return (base, base, base, base + 100, base + 200)[send % 5]


def batch_requests(keys: list[Key], rng: random.Random) -> list[tuple[str, list[tuple[Key, int]]]]:
    """BatchMeterUsage requests (product, [(key, quantity)]): each round sends every key once,
    in batches of 1 to 4 distinct keys of one product; the rounds are shuffled together."""
    base = {key: 1 + i for i, key in enumerate(keys)}
    requests = []
    for send in range(ROUNDS):
        for product in ("prod-legacy", "prod-ca"):
            ofproduct = [k for k in keys if k.product == product]
            rng.shuffle(ofproduct)
            while ofproduct:
                size = rng.randint(1, 4)
                chosen, ofproduct = ofproduct[:size], ofproduct[size:]
                requests.append(
                    (product, [(k, variant(base[k], send + i)) for i, k in enumerate(chosen)])
                )
    rng.shuffle(requests)
    return requests


def check_one_winner(answers: list[Answer], refusal: str) -> tuple[str, int]:
    """Every answer for one key: one id and quantity on every Success, ``refusal`` for every
    other quantity. Returns the winning (id, quantity)."""
    won = {(a.record_id, a.quantity) for a in answers if a.status == "Success"}
    assert len(won) == 1, (answers[0].key, won)
    [(record_id, quantity)] = won
    assert record_id is not None
    for answer in answers:
        expected = ("Success", record_id) if answer.quantity == quantity else (refusal, None)
        assert (answer.status, answer.record_id) == expected, answer
    return record_id, quantity


def test_three_nodes_on_one_database_bill_each_key_once(
    nodes: list[ServerProcess], now: int
) -> None:
    rng = random.Random(20240611)
    keys = batch_keys(now)
    batches = batch_requests(keys, rng)
    # MeterUsage: three instances, each metered for one hour from every node.
    instances = [f"i-race-{n}" for n in range(3)]
    meters = [(i, (7 + n, 7 + n, 57 + n)[s % 3]) for s in range(9) for n, i in enumerate(instances)]
    # Per-request MeterUsage: two ClientTokens, each sent from every node by other instances.
    tokens = ["race-order-1", "race-order-2"]
    orders = [(t, (3 + n, 3 + n, 33 + n)[s % 3]) for s in range(9) for n, t in enumerate(tokens)]
    work: list[Callable[[int], list[Answer]]] = []

    sellers = [make_client(node.url, **CLIENT_CONFIG) for node in nodes]
    buyers = {
        (n, session): buyer_client(node.url, ALICE_KEY, session=session, **CLIENT_CONFIG)
        for n, node in enumerate(nodes)
        for session in [*instances, "i-agent-a", "i-agent-b"]
    }

    def batch_call(product: str, sent: list[tuple[Key, int]]) -> Callable[[int], list[Answer]]:
        def call(node: int) -> list[Answer]:
            response = sellers[node].batch_meter_usage(
                ProductCode=product, UsageRecords=[key.record(q) for key, q in sent]
            )
            assert response["UnprocessedRecords"] == []
            results = response["Results"]
            assert [r["UsageRecord"]["Quantity"] for r in results] == [q for _, q in sent]
            return [
                Answer(key, node, q, r["Status"], r.get("MeteringRecordId"))
                for (key, q), r in zip(sent, results, strict=True)
            ]

        return call

    def meter_call(session: str, quantity: int, **params: Any) -> Callable[[int], list[Answer]]:
        def call(node: int) -> list[Answer]:
            try:
                response = buyers[node, session].meter_usage(
                    Timestamp=now, UsageQuantity=quantity, **params
                )
            except ClientError as error:
                code = error.response["Error"]["Code"]
                return [Answer(params.get("ClientToken", session), node, quantity, code, None)]
            return [
                Answer(
                    params.get("ClientToken", session),
                    node,
                    quantity,
                    "Success",
                    response["MeteringRecordId"],
                )
            ]

        return call

    work += [batch_call(product, sent) for product, sent in batches]
    work += [
        meter_call(i, q, ProductCode="prod-ami", UsageDimension="vcpu_hours") for i, q in meters
    ]
    work += [
        meter_call(
            ("i-agent-a", "i-agent-b")[s % 2],
            q,
            ProductCode="prod-agent",
            UsageDimension="invocations",
            ClientToken=t,
        )
        for s, (t, q) in enumerate(orders)
    ]
    rng.shuffle(work)
    assert len(work) >= 300

    answers: list[Answer] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(WORKERS)

    def worker(w: int) -> None:
        gate.wait()
        for i, call in enumerate(work[w::WORKERS]):
            try:
                got = call((w + i) % NODES)  # round-robin over the nodes
            except BaseException as error:  # reported below, with the rest
                with lock:
                    failures.append(error)
                continue
            with lock:
                answers.extend(got)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "the clients did not finish"
    assert failures == []

    by_key: dict[Key | str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_key[answer.key].append(answer)
    assert set(by_key) == {*keys, *instances, *tokens}
    assert len(answers) == len(keys) * ROUNDS + len(meters) + len(orders)
    # Every key went through every node, and was both retried and contradicted.
    for key, got in by_key.items():
        assert {a.node for a in got} == set(range(NODES)), key
        assert len({a.quantity for a in got}) > 1, key
    winners: dict[Key | str, tuple[str, int]] = {
        key: check_one_winner(by_key[key], "DuplicateRecord") for key in keys
    }
    winners |= {i: check_one_winner(by_key[i], "DuplicateRequestException") for i in instances}
    winners |= {t: check_one_winner(by_key[t], "IdempotencyConflictException") for t in tokens}

    # Every node lists the same ledger: one record per key, the winner's id and quantity.
    listed = []
    for node in nodes:
        status, body = admin(node.url, "GET", "/_marketmeter/usage?limit=100000")
        assert status == 200, body
        listed.append(body["records"])
    assert listed[1] == listed[0]
    assert listed[2] == listed[0]
    stored = {r["meteringRecordId"]: r["quantity"] for r in listed[0]}
    assert len(stored) == len(listed[0]) == len(winners)
    acknowledged = {a.record_id for a in answers if a.status == "Success"}
    assert acknowledged == set(stored)
    assert dict(winners.values()) == stored
    for record in listed[0]:
        if record["productCode"] in ("prod-legacy", "prod-ca"):
            key = Key(
                record["productCode"],
                record["customerIdentifier"]
                if record["productCode"] == "prod-legacy"
                else record["customerAWSAccountId"],
                record["dimension"],
                record["timestamp"],
            )
        elif record["productCode"] == "prod-ami":
            key = record["instance"]
        else:
            key = next(t for t in tokens if winners[t][0] == record["meteringRecordId"])
        assert winners[key] == (record["meteringRecordId"], record["quantity"]), record

    # The database itself: one row per key, and the billed total is the winners' total.
    with psycopg.connect(nodes[0].db_url) as connection:
        rows, distinct_keys, distinct_ids, total_micros = connection.execute(
            "SELECT count(*), count(DISTINCT (hour, scope, customer_account, dimension)), "
            "count(DISTINCT metering_record_id), sum(quantity_micros) FROM usage_records"
        ).fetchone() or (None, None, None, None)
    winning_total = sum(q for _, q in winners.values())
    assert (rows, distinct_keys, distinct_ids) == (len(winners),) * 3
    assert total_micros == winning_total * 1_000_000
    assert sum(stored.values()) == winning_total


# --- nodes starting together ---------------------------------------------------------------

NEW_SAAS_AGREEMENTS = {
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001",
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002",
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009",
    "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001",
    "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002",
}


def sessions_waiting_on_locks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_nodes_starting_together_mint_one_token_per_new_agreement(tmp_path: Path) -> None:
    """Three nodes started together with one --catalog on an empty ledger: the catalog's new
    SaaS agreements get one registration token each, not one per node. The test holds the
    catalog's tables until every node has read the (empty) catalog and is writing its own,
    so the nodes overlap every time."""
    url = shared_server().fresh_database()
    open_store(url).close_now()  # migrated; the catalog is empty
    nodes = [ServerProcess(tmp_path / f"node{n}.db", CATALOG, db_url=url) for n in range(NODES)]
    failures: list[BaseException] = []

    def start(node: ServerProcess) -> None:
        try:
            node.start(timeout=60)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    try:
        with psycopg.connect(url) as holder:  # one transaction, until rollback
            holder.execute("LOCK TABLE sellers IN EXCLUSIVE MODE")  # reads pass, writes wait
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while sessions_waiting_on_locks(url) < NODES and time.monotonic() < deadline:
                time.sleep(0.05)
            waiting = sessions_waiting_on_locks(url)
            holder.rollback()
        for thread in threads:
            thread.join(timeout=60)
        assert waiting == NODES
        assert failures == []
        with psycopg.connect(url) as connection:
            minted = connection.execute(
                "SELECT license_arn, count(*) FROM registration_tokens GROUP BY license_arn"
            ).fetchall()
        assert dict(minted) == dict.fromkeys(NEW_SAAS_AGREEMENTS, 1)
    finally:
        for node in nodes:
            node.stop()
