"""Retry idempotency over the service (docs/reliability.md, "Retries are idempotent"):
hypothesis state machines against a real marketmeter server (in-process uvicorn, real HTTP, a
real SQLite or PostgreSQL ledger).

``BatchRetryMachine`` sends random BatchMeterUsage batches over a small key space, replays
earlier batches whole, in part and reordered, changes the quantity of billed keys and mixes old
records with new ones. Its model is the first quantity, MeteringRecordId and timestamp billed per
deduplication key (customer account, dimension, hour). After every request each result must be
the model's, in request order, echoing its record; after every step the ledger
(``GET /_marketmeter/usage``) must be exactly the model: one record per distinct key, the first
quantity and id, so the billed total never moves on a replay.

``MeterUsageRetryMachine`` does the same for MeterUsage, once per (product, instance, dimension,
hour): the same quantity again answers the first id, another one ``DuplicateRequestException``.

The service clock is frozen at ``NOW`` so the hours stay inside the 6-hour window; every example
starts from an empty ledger (``POST /_marketmeter/reset``, clock kept).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from marketmeter.testing import MarketmeterAdmin, MarketmeterServer
from tests.postgres_server import PostgresServer

__all__ = ["BatchRetryMachine", "MeterUsageRetryMachine", "MeteringWire"]

# The server runs in this process. On PostgreSQL its connection pool (psycopg_pool) draws
# each new connection's expiry jitter from the global ``random`` in a thread of its own; when
# that lands during one of hypothesis's draws, hypothesis takes it for a strategy using
# ``random`` (a deprecation warning, an error here) and the replay then differs. The strategies
# here use no ``random``: the warning says nothing about them.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"

# The frozen service clock: half past the hour, so every HOURS timestamp below is in the window.
NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
HOURS = tuple(int((NOW.replace(minute=0) - timedelta(hours=back)).timestamp()) for back in range(4))
# Seconds into an hour: at most 29:59, so the current hour's records are never in the future.
MINUTE_OFFSETS = st.integers(min_value=0, max_value=1799)
QUANTITIES = st.integers(min_value=0, max_value=100)

SELLER_KEY = "AKIATESTSELLER000001"
ALICE_KEY = "AKIATESTALICE0000001"
ALICE = "444455556666"
BOB = "777788889999"
# The two buyers of tests/data/catalog.yaml subscribed to prod-legacy, each under both of the
# names a record may give it: a CustomerIdentifier resolves to its account, so both share keys.
CUSTOMERS: tuple[tuple[str, str, str], ...] = (
    ("CustomerIdentifier", "cust-alice", ALICE),
    ("CustomerAWSAccountId", ALICE, ALICE),
    ("CustomerIdentifier", "cust-bob", BOB),
    ("CustomerAWSAccountId", BOB, BOB),
)
ACCOUNT_OF = {name: account for _, name, account in CUSTOMERS}
LEGACY_DIMENSIONS = ("users", "api_calls")

# MeterUsage: alice's hourly AMI and container products; the instance is the session token.
METERED_PRODUCTS = (("prod-ami", "vcpu_hours"), ("prod-container", "tasks"))
INSTANCES = ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2", "task/3f9c7d2e")

MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Record = dict[str, Any]
BatchKey = tuple[str, str, int]  # (customer account, dimension, hour)
MeterKey = tuple[str, str, str, int]  # (product, instance, dimension, hour)


@dataclass(frozen=True)
class Billed:
    """What the ledger must hold for one key: the first quantity, id and timestamp billed."""

    quantity: int
    record_id: str
    timestamp: int


def hour_of(timestamp: int) -> int:
    return timestamp - timestamp % 3600


class MeteringWire:
    """The Metering Service's JSON 1.1 wire, spoken with httpx: open auth reads the access key
    and session token from signed-looking headers, so no signature is computed."""

    def __init__(self, endpoint: str) -> None:
        self._http = httpx.Client(base_url=endpoint, timeout=30.0)

    def call(
        self, operation: str, body: Record, access_key: str, session: str | None = None
    ) -> httpx.Response:
        headers = {
            "X-Amz-Target": f"AWSMPMeteringService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/20260615/us-east-1/"
                "aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
            ),
        }
        if session is not None:
            headers["X-Amz-Security-Token"] = session
        return self._http.post("/", content=json.dumps(body), headers=headers)

    def batch_meter_usage(self, records: list[Record]) -> Record:
        body = {"ProductCode": "prod-legacy", "UsageRecords": records}
        response = self.call("BatchMeterUsage", body, SELLER_KEY)
        assert response.status_code == 200, response.text
        answer: Record = response.json()
        return answer

    def close(self) -> None:
        self._http.close()


@dataclass
class Bench:
    """The module's server: its wire and its admin API."""

    wire: MeteringWire
    admin: MarketmeterAdmin


@st.composite
def quantity_forms(draw: st.DrawFn, quantity: int) -> Record:
    """``quantity`` as one of the forms that carry the same value: ``Quantity``, a decimal
    string with or without trailing zeros, or (for 0) no quantity member at all."""
    forms: list[Record] = [
        {"Quantity": quantity},
        {"QuantityAsDecimal": str(quantity)},
        {"QuantityAsDecimal": f"{quantity}.000"},
    ]
    if quantity == 0:
        forms.append({})
    return draw(st.sampled_from(forms))


@st.composite
def usage_records(
    draw: st.DrawFn,
    account: str | None = None,
    dimension: str | None = None,
    hour: int | None = None,
    quantity: int | None = None,
) -> Record:
    """A prod-legacy record: random where not given, under either name of its customer."""
    customers = [c for c in CUSTOMERS if account is None or c[2] == account]
    member, name, _ = draw(st.sampled_from(customers))
    chosen_hour = hour if hour is not None else draw(st.sampled_from(HOURS))
    chosen_quantity = quantity if quantity is not None else draw(QUANTITIES)
    return {
        "Timestamp": chosen_hour + draw(MINUTE_OFFSETS),
        member: name,
        "Dimension": dimension
        if dimension is not None
        else draw(st.sampled_from(LEGACY_DIMENSIONS)),
        **draw(quantity_forms(chosen_quantity)),
    }


def batch_key(record: Record) -> BatchKey:
    name = record.get("CustomerIdentifier") or record["CustomerAWSAccountId"]
    return ACCOUNT_OF[name], record["Dimension"], hour_of(record["Timestamp"])


def quantity_of(record: Record) -> int:
    if "QuantityAsDecimal" in record:
        return int(record["QuantityAsDecimal"].split(".")[0])
    return int(record.get("Quantity", 0))


def new_record_id(result: Record, known: set[str]) -> str:
    record_id = str(result["MeteringRecordId"])
    assert uuid.UUID(record_id).version == 4
    assert record_id not in known, f"a new key reused the id {record_id}"
    return record_id


class BatchRetryMachine(RuleBasedStateMachine):
    """BatchMeterUsage under retries: the model is ``billed``, what the ledger must hold."""

    def __init__(self, bench: Bench) -> None:
        super().__init__()
        self.bench = bench
        self.billed: dict[BatchKey, Billed] = {}
        # Every record sent as new, with its first result; batches are lists of its indices.
        self.sent: list[tuple[Record, Record]] = []
        self.batches: list[list[int]] = []

    @initialize()
    def start_empty(self) -> None:
        self.bench.admin.reset(keep=("clock",))

    def send(self, records: list[Record]) -> list[Record]:
        """Send one batch; check every result against the model, in order, updating it."""
        answer = self.bench.wire.batch_meter_usage(records)
        assert answer["UnprocessedRecords"] == []
        results: list[Record] = answer["Results"]
        assert len(results) == len(records)
        known = {billed.record_id for billed in self.billed.values()}
        for record, result in zip(records, results, strict=True):
            assert result["UsageRecord"] == record
            key = batch_key(record)
            billed = self.billed.get(key)
            if billed is None:
                assert result["Status"] == "Success", result
                record_id = new_record_id(result, known)
                known.add(record_id)
                self.billed[key] = Billed(quantity_of(record), record_id, record["Timestamp"])
            elif billed.quantity == quantity_of(record):
                expected = {"UsageRecord": record, "Status": "Success"}
                assert result == {**expected, "MeteringRecordId": billed.record_id}
            else:
                assert result == {"UsageRecord": record, "Status": "DuplicateRecord"}
        return results

    def send_new(self, records: list[Record]) -> None:
        results = self.send(records)
        start = len(self.sent)
        self.sent.extend(zip(records, results, strict=True))
        self.batches.append(list(range(start, len(self.sent))))

    def replay(self, indices: list[int]) -> None:
        """Send earlier records again: each answers exactly as the first time, nothing billed."""
        before = dict(self.billed)
        results = self.send([self.sent[i][0] for i in indices])
        assert results == [self.sent[i][1] for i in indices]
        assert self.billed == before

    @rule(records=st.lists(usage_records(), min_size=1, max_size=25))
    def new_batch(self, records: list[Record]) -> None:
        self.send_new(records)

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def replay_batch(self, data: st.DataObject) -> None:
        self.replay(data.draw(st.sampled_from(self.batches), label="batch"))

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def replay_subset(self, data: st.DataObject) -> None:
        batch = data.draw(st.sampled_from(self.batches), label="batch")
        subset = data.draw(st.lists(st.sampled_from(batch), min_size=1, unique=True))
        self.replay(sorted(subset))

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def replay_subset_reordered(self, data: st.DataObject) -> None:
        batch = data.draw(st.sampled_from(self.batches), label="batch")
        subset = data.draw(st.lists(st.sampled_from(batch), min_size=1, unique=True))
        self.replay(data.draw(st.permutations(subset), label="order"))

    @precondition(lambda self: bool(self.billed))
    @rule(data=st.data())
    def change_quantity(self, data: st.DataObject) -> None:
        """A billed key again, at any time of its hour, under either customer name, with
        another quantity: ``DuplicateRecord``, and the first stays billed."""
        key = data.draw(st.sampled_from(sorted(self.billed)), label="key")
        first = self.billed[key]
        quantity = data.draw(QUANTITIES.filter(lambda q: q != first.quantity), label="quantity")
        account, dimension, hour = key
        record = data.draw(usage_records(account, dimension, hour, quantity), label="record")
        before = dict(self.billed)
        assert self.send([record]) == [{"UsageRecord": record, "Status": "DuplicateRecord"}]
        assert self.billed == before

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def mix_old_and_new(self, data: st.DataObject) -> None:
        """Earlier records among new ones, in any order: the old ones answer as before; the new
        ones form a batch of their own for later replays."""
        old = data.draw(
            st.lists(st.sampled_from(range(len(self.sent))), min_size=1, max_size=12),
            label="old",
        )
        new = data.draw(st.lists(usage_records(), min_size=1, max_size=13), label="new")
        order = data.draw(
            st.permutations([*(("old", i) for i in old), *(("new", i) for i in range(len(new)))])
        )
        records = [self.sent[i][0] if kind == "old" else new[i] for kind, i in order]
        results = self.send(records)
        first_sent = len(self.sent)
        for (kind, i), record, result in zip(order, records, results, strict=True):
            if kind == "old":
                assert result == self.sent[i][1]
            else:
                self.sent.append((record, result))
        self.batches.append(list(range(first_sent, len(self.sent))))

    @invariant()
    def ledger_is_the_model(self) -> None:
        rows = self.bench.admin.usage(product="prod-legacy", limit=1000)
        ledger = {
            (row["customerAWSAccountId"], row["dimension"], hour_of(row["timestamp"])): Billed(
                row["quantity"], row["meteringRecordId"], row["timestamp"]
            )
            for row in rows
        }
        assert len(rows) == len(self.billed)
        assert ledger == self.billed
        assert sum(row["quantity"] for row in rows) == sum(b.quantity for b in self.billed.values())
        assert {row["operation"] for row in rows} <= {"BatchMeterUsage"}


@dataclass(frozen=True)
class MeterCall:
    """One MeterUsage call: the instance (session token) and the request body."""

    instance: str
    body: Record

    @property
    def key(self) -> MeterKey:
        body = self.body
        return (
            body["ProductCode"],
            self.instance,
            body["UsageDimension"],
            hour_of(body["Timestamp"]),
        )

    @property
    def quantity(self) -> int:
        if "UsageQuantityAsDecimal" in self.body:
            return int(self.body["UsageQuantityAsDecimal"].split(".")[0])
        return int(self.body.get("UsageQuantity", 0))


@st.composite
def meter_calls(
    draw: st.DrawFn, key: MeterKey | None = None, quantity: int | None = None
) -> MeterCall:
    """A MeterUsage call: random where not given, its quantity in either member."""
    if key is None:
        product, dimension = draw(st.sampled_from(METERED_PRODUCTS))
        instance = draw(st.sampled_from(INSTANCES))
        hour = draw(st.sampled_from(HOURS))
    else:
        product, instance, dimension, hour = key
    chosen = quantity if quantity is not None else draw(QUANTITIES)
    form = draw(quantity_forms(chosen))
    renamed = {"Usage" + name: value for name, value in form.items()}
    body = {
        "ProductCode": product,
        "Timestamp": hour + draw(MINUTE_OFFSETS),
        "UsageDimension": dimension,
        **renamed,
    }
    return MeterCall(instance, body)


class MeterUsageRetryMachine(RuleBasedStateMachine):
    """MeterUsage under retries, hourly per instance: the model is ``billed``."""

    def __init__(self, bench: Bench) -> None:
        super().__init__()
        self.bench = bench
        self.billed: dict[MeterKey, Billed] = {}
        self.calls: list[tuple[MeterCall, httpx.Response]] = []

    @initialize()
    def start_empty(self) -> None:
        self.bench.admin.reset(keep=("clock",))

    def send(self, call: MeterCall) -> httpx.Response:
        response = self.bench.wire.call("MeterUsage", call.body, ALICE_KEY, call.instance)
        billed = self.billed.get(call.key)
        if billed is None:
            assert response.status_code == 200, response.text
            known = {b.record_id for b in self.billed.values()}
            record_id = new_record_id(response.json(), known)
            assert response.json() == {"MeteringRecordId": record_id}
            self.billed[call.key] = Billed(call.quantity, record_id, call.body["Timestamp"])
        elif billed.quantity == call.quantity:
            assert response.status_code == 200, response.text
            assert response.json() == {"MeteringRecordId": billed.record_id}
        else:
            assert response.status_code == 400, response.text
            assert response.json()["__type"] == "DuplicateRequestException"
            assert "MeteringRecordId" not in response.json()
        return response

    @rule(call=meter_calls())
    def meter(self, call: MeterCall) -> None:
        self.calls.append((call, self.send(call)))

    @precondition(lambda self: bool(self.calls))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """An earlier call exactly again: the same answer, nothing billed."""
        call, first = data.draw(st.sampled_from(self.calls), label="call")
        before = dict(self.billed)
        again = self.send(call)
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert self.billed == before

    @precondition(lambda self: bool(self.billed))
    @rule(data=st.data())
    def same_hour_same_quantity(self, data: st.DataObject) -> None:
        """The billed quantity at another time of the hour, in any form: the first id."""
        key = data.draw(st.sampled_from(sorted(self.billed)), label="key")
        call = data.draw(meter_calls(key, self.billed[key].quantity), label="call")
        before = dict(self.billed)
        assert self.send(call).status_code == 200
        assert self.billed == before

    @precondition(lambda self: bool(self.billed))
    @rule(data=st.data())
    def change_quantity(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.billed)), label="key")
        first = self.billed[key].quantity
        quantity = data.draw(QUANTITIES.filter(lambda q: q != first), label="quantity")
        before = dict(self.billed)
        assert self.send(data.draw(meter_calls(key, quantity), label="call")).status_code == 400
        assert self.billed == before

    @invariant()
    def ledger_is_the_model(self) -> None:
        rows = [
            row
            for product, _ in METERED_PRODUCTS
            for row in self.bench.admin.usage(product=product, limit=1000)
        ]
        ledger = {
            (
                row["productCode"],
                row["instance"],
                row["dimension"],
                hour_of(row["timestamp"]),
            ): Billed(row["quantity"], row["meteringRecordId"], row["timestamp"])
            for row in rows
        }
        assert len(rows) == len(self.billed)
        assert ledger == self.billed
        assert {(row["operation"], row["customerAWSAccountId"]) for row in rows} <= {
            ("MeterUsage", ALICE)
        }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    """One in-process server for the module, its clock frozen at ``NOW``, on a SQLite file or
    a fresh database of the test PostgreSQL server."""
    db: str | None = None
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        db = postgres.fresh_database()
    server = MarketmeterServer(catalog=CATALOG, db=db).start()
    wire = MeteringWire(server.endpoint)
    try:
        server.admin.clock.set(NOW)
        yield Bench(wire, server.admin)
    finally:
        wire.close()
        server.stop()


# hypothesis annotates the factory as a class, though it documents (and accepts) any callable
# that returns a machine: these lambdas bind the module's bench.


def test_batch_meter_usage_retries_never_bill_twice(bench: Bench) -> None:
    run_state_machine_as_test(
        lambda: BatchRetryMachine(bench),  # type: ignore[arg-type]
        settings=MACHINE_SETTINGS,
    )


def test_meter_usage_retries_never_bill_twice(bench: Bench) -> None:
    run_state_machine_as_test(
        lambda: MeterUsageRetryMachine(bench),  # type: ignore[arg-type]
        settings=MACHINE_SETTINGS,
    )
