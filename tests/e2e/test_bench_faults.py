"""Fault injection and quotas end to end: rules set through the admin API of a real
``marketmeter serve``, observed through real boto3 clients (their own retry logic included),
the journal and the billed usage.

One server serves the module; every test starts from ``POST /_marketmeter/reset`` (no rule, no
latency, quota as started, empty ledger and journal). Rule ids keep counting across resets, so
fault labels are built from the id the admin API gave the rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketmeter.testbench.faults import ERROR_CLASSES
from marketmeter.testing.admin_client import AdminError
from tests.e2e.bench_fixtures import Bench, as_echoed, metering_client, outcome, start_bench
from tests.e2e.buyers import ALICE_KEY, DAVE_KEY, SELLER_KEY, admin
from tests.e2e.wire_records import record

pytestmark = pytest.mark.e2e

OTHER_KEY = ("AKIATESTOTHERKEY0001", "other-secret")
THROTTLE = {"operation": "BatchMeterUsage", "times": 2, "error": {"code": "ThrottlingException"}}
INTERNAL_MESSAGE = "An internal error has occurred. Retry your request."


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    yield from start_bench(tmp_path_factory.mktemp("bench-faults"))


@pytest.fixture
def bench(shared: Bench) -> Bench:
    """The module's server, reset."""
    shared.admin.reset()
    return shared


def bill(client: Any, *records: dict[str, Any], product: str = "prod-legacy") -> Any:
    return client.batch_meter_usage(ProductCode=product, UsageRecords=list(records))


def meter_usage(client: Any, now: int, product: str = "prod-ami") -> Any:
    return client.meter_usage(
        ProductCode=product, Timestamp=now, UsageDimension="vcpu_hours", UsageQuantity=1
    )


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return dict(raised.value.response)


def exchanges(bench: Bench, **filters: Any) -> list[tuple[Any, ...]]:
    """The journal's (status, errorType, fault, verdicts) of each call, oldest first."""
    return [
        (e["status"], e["errorType"], e["fault"], e["verdicts"])
        for e in bench.admin.journal.entries(**filters)
    ]


def billed_ids(bench: Bench) -> list[str]:
    return [r["meteringRecordId"] for r in bench.admin.usage()]


def label(rule: dict[str, Any], effect: str) -> str:
    return f"fault rule {rule['id']}: {effect}"


def as_sent(echoed: dict[str, Any]) -> dict[str, Any]:
    """A record boto3 parsed back, with its epoch ``Timestamp`` as it was sent."""
    return {**echoed, "Timestamp": int(echoed["Timestamp"].timestamp())}


def five_records(now: int) -> list[dict[str, Any]]:
    """Five records that all bill: two buyers, two dimensions, two hours."""
    return [
        record(now, "cust-alice", "users", 1),
        record(now, "cust-alice", "api_calls", 2),
        record(now, "cust-bob", "users", 3),
        record(now, "cust-bob", "api_calls", 4),
        record(now - 3600, "cust-alice", "users", 5),
    ]


# --- boto3's own retry logic -------------------------------------------------------------------


@pytest.mark.parametrize(
    "retries",
    [{"mode": "standard", "max_attempts": 3}, {"mode": "legacy"}],
    ids=["standard", "legacy-defaults"],
)
def test_boto3_retries_through_two_throttles_and_bills_once(
    bench: Bench, now: int, retries: dict[str, Any]
) -> None:
    [rule] = bench.admin.faults.add(THROTTLE)
    client = metering_client(bench.url, retries=retries)

    response = bill(client, record(now, quantity=7))

    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    [result] = response["Results"]
    assert result["Status"] == "Success"
    throttled: tuple[Any, ...] = (
        400,
        "ThrottlingException",
        label(rule, "ThrottlingException"),
        [],
    )
    assert exchanges(bench) == [throttled, throttled, (200, None, None, ["Success"])]
    entries = bench.admin.journal.entries()
    assert [e["operation"] for e in entries] == ["BatchMeterUsage"] * 3
    assert entries[-1]["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert [e["request"] for e in entries] == [
        {"ProductCode": "prod-legacy", "UsageRecords": [record(now, quantity=7)]}
    ] * 3
    assert billed_ids(bench) == [result["MeteringRecordId"]]
    assert bench.admin.faults.rules() == []  # used up


def test_a_validation_error_is_not_retried_and_never_reaches_the_rules(
    bench: Bench, now: int
) -> None:
    [rule] = bench.admin.faults.add(THROTTLE)
    client = metering_client(bench.url, retries={"mode": "standard", "max_attempts": 3})

    error = refusal(lambda: bill(client, record(now, quantity=2**31)))

    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["RetryAttempts"] == 0
    assert exchanges(bench) == [(400, "ValidationException", None, [])]
    assert billed_ids(bench) == []
    assert bench.admin.faults.rules() == [{**rule, "remaining": 2, "matched": 0, "applied": 0}]


def test_internal_errors_are_retried_until_boto3_gives_up(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {
            "operation": "BatchMeterUsage",
            "times": 5,
            "error": {"code": "InternalServiceErrorException"},
        }
    )
    client = metering_client(bench.url, retries={"mode": "standard", "max_attempts": 2})

    error = refusal(lambda: bill(client, record(now)))

    assert error["Error"] == {"Code": "InternalServiceErrorException", "Message": INTERNAL_MESSAGE}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error["ResponseMetadata"]["RetryAttempts"] == 2
    failed: tuple[Any, ...] = (
        500,
        "InternalServiceErrorException",
        label(rule, "InternalServiceErrorException"),
        [],
    )
    assert exchanges(bench) == [failed] * 3
    assert billed_ids(bench) == []
    assert bench.admin.faults.rules() == [{**rule, "remaining": 2, "matched": 3, "applied": 3}]


def test_a_status_code_override_is_what_goes_on_the_wire(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {
            "operation": "BatchMeterUsage",
            "times": 1,
            "error": {"code": "ThrottlingException", "statusCode": 503},
        }
    )

    error = refusal(lambda: bill(metering_client(bench.url), record(now)))

    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert exchanges(bench) == [
        (503, "ThrottlingException", label(rule, "ThrottlingException"), [])
    ]


def _meter(bench: Bench, now: int) -> Any:
    return meter_usage(metering_client(bench.url, ALICE_KEY, session="i-0abc"), now)


def _resolve(bench: Bench, now: int) -> Any:
    token = bench.admin.mint_token("prod-legacy", "444455556666")["token"]
    return metering_client(bench.url).resolve_customer(RegistrationToken=token)


def _register(bench: Bench, now: int) -> Any:
    client = metering_client(bench.url, ALICE_KEY, session="task-1")
    return client.register_usage(ProductCode="prod-container", PublicKeyVersion=1)


@pytest.mark.parametrize(
    ("operation", "call", "error", "message"),
    [
        (
            "MeterUsage",
            _meter,
            {"code": "InvalidProductCodeException"},
            "Injected fault: InvalidProductCodeException",
        ),
        (
            "ResolveCustomer",
            _resolve,
            {"code": "InvalidTokenException", "message": "The token was revoked."},
            "The token was revoked.",
        ),
        (
            "RegisterUsage",
            _register,
            {"code": "CustomerNotEntitledException"},
            "Injected fault: CustomerNotEntitledException",
        ),
        (
            "BatchMeterUsage",
            lambda bench, now: bill(metering_client(bench.url), record(now)),
            {"code": "TimestampOutOfBoundsException", "message": "too old"},
            "too old",
        ),
    ],
    ids=["MeterUsage", "ResolveCustomer", "RegisterUsage", "BatchMeterUsage"],
)
def test_any_modelled_error_can_be_injected_into_any_operation(
    bench: Bench,
    now: int,
    operation: str,
    call: Any,
    error: dict[str, Any],
    message: str,
) -> None:
    [rule] = bench.admin.faults.add({"operation": operation, "times": 1, "error": error})

    refused = refusal(lambda: call(bench, now))
    answered = call(bench, now)  # the rule is used up: an honest answer

    assert refused["Error"] == {"Code": error["code"], "Message": message}
    assert refused["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answered["ResponseMetadata"]["HTTPStatusCode"] == 200
    entries = bench.admin.journal.entries(operation=operation)
    assert [(e["status"], e["errorType"], e["fault"]) for e in entries] == [
        (400, error["code"], label(rule, error["code"])),
        (200, None, None),
    ]


# --- UnprocessedRecords ------------------------------------------------------------------------


def test_unprocessed_records_are_echoed_unbilled_and_bill_when_sent_again(
    bench: Bench, now: int
) -> None:
    [rule] = bench.admin.faults.add(
        {
            "operation": "BatchMeterUsage",
            "times": 1,
            "seed": 7,
            "unprocessedRecords": {"count": 2},
        }
    )
    sent = five_records(now)
    client = metering_client(bench.url)

    response = bill(client, *sent)

    held = [as_echoed(r) for r in sent if as_echoed(r) in response["UnprocessedRecords"]]
    assert response["UnprocessedRecords"] == held
    assert len(held) == 2
    processed = [as_echoed(r) for r in sent if as_echoed(r) not in held]
    assert [r["UsageRecord"] for r in response["Results"]] == processed
    assert [r["Status"] for r in response["Results"]] == ["Success"] * 3
    first_ids = [r["MeteringRecordId"] for r in response["Results"]]
    assert sorted(billed_ids(bench)) == sorted(first_ids)
    [entry] = bench.admin.journal.entries()
    assert entry["fault"] == label(rule, "2 unprocessed records")
    assert entry["verdicts"] == ["Unprocessed" if as_echoed(r) in held else "Success" for r in sent]

    resent = bill(client, *response["UnprocessedRecords"])

    assert [r["Status"] for r in resent["Results"]] == ["Success", "Success"]
    assert resent["UnprocessedRecords"] == []
    assert len(billed_ids(bench)) == 5
    replay = bill(client, *sent)
    ids_by_position = {
        sent.index(as_sent(r["UsageRecord"])): r["MeteringRecordId"]
        for r in response["Results"] + resent["Results"]
    }
    assert [r["Status"] for r in replay["Results"]] == ["Success"] * 5
    assert [r["MeteringRecordId"] for r in replay["Results"]] == [
        ids_by_position[position] for position in range(5)
    ]
    assert sorted(billed_ids(bench)) == sorted(ids_by_position.values())


def test_unprocessed_indices_hold_back_exactly_those_records(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [0, 4]}}
    )
    sent = five_records(now)

    response = bill(metering_client(bench.url), *sent)

    assert response["UnprocessedRecords"] == [as_echoed(sent[0]), as_echoed(sent[4])]
    assert [r["UsageRecord"] for r in response["Results"]] == [as_echoed(r) for r in sent[1:4]]
    assert sorted(billed_ids(bench)) == sorted(r["MeteringRecordId"] for r in response["Results"])
    assert exchanges(bench) == [
        (
            200,
            None,
            label(rule, "2 unprocessed records"),
            ["Unprocessed", "Success", "Success", "Success", "Unprocessed"],
        )
    ]


def test_a_batch_out_of_the_window_is_refused_whole_despite_an_unprocessed_rule(
    bench: Bench, now: int
) -> None:
    bench.admin.faults.add({"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [1]}})
    sent = [record(now), record(now - 7 * 3600, "cust-bob")]

    error = refusal(lambda: bill(metering_client(bench.url), *sent))

    assert error["Error"]["Code"] == "TimestampOutOfBoundsException"
    assert billed_ids(bench) == []


# --- which calls a rule picks ------------------------------------------------------------------


def test_times_fires_on_the_first_calls_then_the_rule_disappears(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(THROTTLE)
    client = metering_client(bench.url)

    first = outcome(lambda: bill(client, record(now)))
    after_one = bench.admin.faults.rules()
    rest = [outcome(lambda: bill(client, record(now))) for _ in range(3)]

    assert [first, *rest] == ["ThrottlingException", "ThrottlingException", "Success", "Success"]
    assert after_one == [{**rule, "remaining": 1, "matched": 1, "applied": 1}]
    assert bench.admin.faults.rules() == []


def test_every_nth_fires_on_calls_3_and_6(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"operation": "BatchMeterUsage", "everyNth": 3, "error": {"code": "ThrottlingException"}}
    )
    client = metering_client(bench.url)

    outcomes = [outcome(lambda: bill(client, record(now))) for _ in range(6)]

    assert outcomes == ["Success", "Success", "ThrottlingException"] * 2
    assert bench.admin.faults.rules() == [{**rule, "matched": 6, "applied": 2}]


def test_a_seeded_probability_gives_the_same_outcomes_every_run(bench: Bench, now: int) -> None:
    coin = {
        "operation": "BatchMeterUsage",
        "probability": 0.5,
        "seed": 20261123,
        "error": {"code": "ThrottlingException"},
    }
    client = metering_client(bench.url)

    def run() -> list[str]:
        bench.admin.reset()
        [rule] = bench.admin.faults.add(coin)
        assert rule["seed"] == 20261123
        return [outcome(lambda: bill(client, record(now))) for _ in range(12)]

    first, second = run(), run()

    assert first == second
    assert set(first) == {"Success", "ThrottlingException"}
    [rule] = bench.admin.faults.rules()
    assert (rule["matched"], rule["applied"]) == (12, first.count("ThrottlingException"))


def test_an_unseeded_rule_shows_the_seed_that_replays_its_outcomes(bench: Bench, now: int) -> None:
    coin = {
        "operation": "BatchMeterUsage",
        "probability": 0.5,
        "error": {"code": "ThrottlingException"},
    }
    client = metering_client(bench.url)
    [drawn] = bench.admin.faults.add(coin)
    first = [outcome(lambda: bill(client, record(now))) for _ in range(10)]

    bench.admin.reset()
    [replayed] = bench.admin.faults.add({**coin, "seed": drawn["seed"]})
    second = [outcome(lambda: bill(client, record(now))) for _ in range(10)]

    assert isinstance(drawn["seed"], int)
    assert replayed["seed"] == drawn["seed"]
    assert second == first


def test_a_rule_matches_by_product_code(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"productCode": "prod-ca", "error": {"code": "ThrottlingException"}}
    )
    client = metering_client(bench.url)
    by_account = {
        "Timestamp": now,
        "CustomerAWSAccountId": "444455556666",
        "Dimension": "requests",
        "Quantity": 1,
    }

    assert outcome(lambda: bill(client, record(now))) == "Success"
    assert outcome(lambda: bill(client, by_account, product="prod-ca")) == "ThrottlingException"
    assert bench.admin.faults.rules() == [{**rule, "matched": 1, "applied": 1}]


def test_a_rule_matches_by_access_key_id(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"accessKeyId": OTHER_KEY[0], "error": {"code": "ThrottlingException"}}
    )

    assert outcome(lambda: bill(metering_client(bench.url), record(now))) == "Success"
    other = metering_client(bench.url, OTHER_KEY)
    assert outcome(lambda: bill(other, record(now))) == "ThrottlingException"
    assert bench.admin.faults.rules() == [{**rule, "matched": 1, "applied": 1}]
    [entry] = bench.admin.journal.entries(status=400)
    assert entry["accessKeyId"] == OTHER_KEY[0]


def test_a_rule_matches_by_region(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"region": "us-west-2", "error": {"code": "ThrottlingException"}}
    )

    east = metering_client(bench.url, region="us-east-1")
    west = metering_client(bench.url, region="us-west-2")
    assert outcome(lambda: bill(east, record(now))) == "Success"
    assert outcome(lambda: bill(west, record(now))) == "ThrottlingException"
    assert bench.admin.faults.rules() == [{**rule, "matched": 1, "applied": 1}]


def test_a_rule_matches_by_operation(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add(
        {"operation": "MeterUsage", "error": {"code": "ThrottlingException"}}
    )

    assert outcome(lambda: bill(metering_client(bench.url), record(now))) == "Success"
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    assert outcome(lambda: meter_usage(alice, now)) == "ThrottlingException"
    assert bench.admin.faults.rules() == [{**rule, "matched": 1, "applied": 1}]


def test_the_first_rule_that_fires_applies_and_every_match_counts(bench: Bench, now: int) -> None:
    first, second = bench.admin.faults.add(
        {"operation": "BatchMeterUsage", "times": 1, "error": {"code": "ThrottlingException"}},
        {"operation": "BatchMeterUsage", "error": {"code": "InternalServiceErrorException"}},
    )
    client = metering_client(bench.url)

    outcomes = [outcome(lambda: bill(client, record(now))) for _ in range(2)]

    assert outcomes == ["ThrottlingException", "InternalServiceErrorException"]
    assert bench.admin.faults.rules() == [{**second, "matched": 2, "applied": 1}]
    assert first["id"] < second["id"]


def test_rules_are_removed_by_id_and_cleared(bench: Bench) -> None:
    first, second = bench.admin.faults.add(
        {"operation": "MeterUsage"}, {"operation": "RegisterUsage"}
    )

    assert bench.admin.faults.remove(first["id"]) == [second]
    with pytest.raises(AdminError) as raised:
        bench.admin.faults.remove(first["id"])
    assert (raised.value.status, raised.value.field) == (404, "id")
    assert bench.admin.faults.clear() == []


# --- latency -----------------------------------------------------------------------------------


def test_a_latency_rule_delays_the_call_which_still_succeeds(bench: Bench, now: int) -> None:
    [rule] = bench.admin.faults.add({"operation": "BatchMeterUsage", "latencyMs": 300})
    client = metering_client(bench.url)

    started = time.monotonic()
    response = bill(client, record(now))
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3
    assert [r["Status"] for r in response["Results"]] == ["Success"]
    [entry] = bench.admin.journal.entries()
    assert entry["fault"] == label(rule, "latency 300 ms")
    assert entry["durationMs"] >= 300


@pytest.mark.timing
def test_global_latency_applies_to_every_call_until_set_back(bench: Bench, now: int) -> None:
    assert bench.admin.faults.latency(200) == {"latency": 200}
    assert admin(bench.url, "GET", "/_marketmeter/faults/effects") == (200, {"latency": 200})
    seller = metering_client(bench.url)
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")

    calls: list[Callable[[], Any]] = [
        lambda: bill(seller, record(now)),
        lambda: meter_usage(alice, now),
    ]
    durations = []
    for call in calls:
        started = time.monotonic()
        call()
        durations.append(time.monotonic() - started)

    assert min(durations) >= 0.2
    assert [e["fault"] for e in bench.admin.journal.entries()] == ["global latency 200 ms"] * 2
    assert bench.admin.faults.latency(0) == {"latency": 0}
    assert admin(bench.url, "GET", "/_localstack/chaos/effects") == (200, {"latency": 0})
    started = time.monotonic()
    bill(seller, record(now))
    assert time.monotonic() - started < 0.2


# --- LocalStack's chaos API --------------------------------------------------------------------

LOCALSTACK_RULE = {
    "service": "meteringmarketplace",
    "region": "us-east-1",
    "operation": "MeterUsage",
    "probability": 1,
    "error": {"statusCode": 400, "code": "ThrottlingException"},
}
S3_RULE = {"service": "s3", "region": "us-east-1", "error": {"statusCode": 503}}


def test_localstack_chaos_faults_are_set_read_and_removed_in_its_own_shape(
    bench: Bench, now: int
) -> None:
    status, rules = admin(bench.url, "POST", "/_localstack/chaos/faults", [LOCALSTACK_RULE])
    assert status == 200
    shown = {"id": rules[0]["id"], **LOCALSTACK_RULE, "matched": 0, "applied": 0}
    assert rules == [shown]
    assert admin(bench.url, "GET", "/_localstack/chaos/faults") == (200, [shown])
    assert bench.admin.faults.rules() == [shown]

    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    error = refusal(lambda: meter_usage(alice, now))
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    west = metering_client(bench.url, ALICE_KEY, session="i-0abc", region="us-west-2")
    assert outcome(lambda: meter_usage(west, now)) == "Success"

    status, rules = admin(bench.url, "PATCH", "/_localstack/chaos/faults", [S3_RULE])
    assert status == 200
    s3 = {"id": rules[1]["id"], **S3_RULE, "matched": 0, "applied": 0}
    status, rules = admin(bench.url, "DELETE", "/_localstack/chaos/faults", [LOCALSTACK_RULE])
    assert (status, rules) == (200, [s3])

    assert outcome(lambda: bill(metering_client(bench.url), record(now))) == "Success"
    assert outcome(lambda: meter_usage(alice, now - 60)) == "Success"
    assert admin(bench.url, "GET", "/_localstack/chaos/faults") == (200, [s3])
    assert admin(bench.url, "DELETE", "/_localstack/chaos/faults") == (200, [])


def test_a_localstack_rule_for_another_services_operation_is_accepted(bench: Bench) -> None:
    other = {"service": "s3", "operation": "PutObject", "error": {"code": "ThrottlingException"}}

    status, rules = admin(bench.url, "POST", "/_localstack/chaos/faults", [other])

    assert status == 200
    assert rules == [{"id": rules[0]["id"], **other, "matched": 0, "applied": 0}]


# --- quotas ------------------------------------------------------------------------------------


def test_a_custom_quota_throttles_per_access_key(bench: Bench, now: int) -> None:
    state = bench.admin.faults.quota("custom", {"MeterUsage": 1})
    assert state == {"profile": "custom", "rates": {"MeterUsage": 1.0}}
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")
    alice_elsewhere = metering_client(bench.url, ALICE_KEY, session="i-0def")
    dave = metering_client(bench.url, DAVE_KEY, session="i-0abc")

    alices = [outcome(lambda: meter_usage(alice, now)) for _ in range(3)]
    alice_other_instance = outcome(lambda: meter_usage(alice_elsewhere, now))
    daves = [outcome(lambda: meter_usage(dave, now)) for _ in range(2)]
    resolve = outcome(lambda: metering_client(bench.url).resolve_customer(RegistrationToken="x"))

    assert alices == ["Success", "ThrottlingException", "ThrottlingException"]
    assert alice_other_instance == "ThrottlingException"  # one bucket per key, not per instance
    # dave's own bucket lets his first call through to the rules, which refuse it
    assert daves == ["CustomerNotEntitledException", "ThrottlingException"]
    assert resolve == "InvalidTokenException"  # no rate for ResolveCustomer
    throttled = bench.admin.journal.entries(error_type="ThrottlingException")
    assert [e["fault"] for e in throttled] == [
        f"quota: MeterUsage over its rate for {ALICE_KEY[0]} in us-east-1"
    ] * 3 + [f"quota: MeterUsage over its rate for {DAVE_KEY[0]} in us-east-1"]


@pytest.mark.backend_agnostic  # formats, fault rules, quotas: no ledger
def test_a_quota_is_per_region_as_aws_s(bench: Bench, now: int) -> None:
    """AWS throttles each account in each region: a key over its rate in us-east-1 still has
    its rate in eu-west-1."""
    bench.admin.faults.quota("custom", {"BatchMeterUsage": 1})
    east = metering_client(bench.url)
    west = metering_client(bench.url, region="eu-west-1")

    assert [outcome(lambda: bill(east, record(now))) for _ in range(2)] == [
        "Success",
        "ThrottlingException",
    ]
    assert outcome(lambda: bill(west, record(now))) == "Success"
    assert outcome(lambda: bill(west, record(now))) == "ThrottlingException"
    throttled = bench.admin.journal.entries(error_type="ThrottlingException")
    assert [e["fault"] for e in throttled] == [
        f"quota: BatchMeterUsage over its rate for {SELLER_KEY[0]} in us-east-1",
        f"quota: BatchMeterUsage over its rate for {SELLER_KEY[0]} in eu-west-1",
    ]


def test_the_off_quota_admits_every_call(bench: Bench, now: int) -> None:
    bench.admin.faults.quota("custom", {"MeterUsage": 1})
    assert bench.admin.faults.quota("off") == {"profile": "off", "rates": {}}
    alice = metering_client(bench.url, ALICE_KEY, session="i-0abc")

    assert [outcome(lambda: meter_usage(alice, now)) for _ in range(5)] == ["Success"] * 5


@pytest.fixture
def aws_quota_bench(tmp_path: Path) -> Iterator[Bench]:
    yield from start_bench(tmp_path, "--quota", "aws")


AWS_STATE = {
    "profile": "aws",
    "rates": {"BatchMeterUsage": 10.0, "MeterUsage": 10.0, "RegisterUsage": 5.0},
}


def test_serve_quota_aws_admits_ten_batch_calls_a_second(aws_quota_bench: Bench, now: int) -> None:
    bench = aws_quota_bench
    banner = "  bench:   quota aws; journal of the last 10000 calls, 12 MiB of bodies "
    assert f"{banner}(marketmeter faults|journal|reset|snapshot)\n" in bench.server.output()
    assert admin(bench.url, "GET", "/_marketmeter/faults/quota") == (200, AWS_STATE)
    assert bench.admin.faults.quota("off") == {"profile": "off", "rates": {}}
    assert bench.admin.reset()["kept"] == []
    assert admin(bench.url, "GET", "/_marketmeter/faults/quota") == (200, AWS_STATE)  # as started
    client = metering_client(bench.url)

    outcomes = [outcome(lambda: bill(client, record(now))) for _ in range(15)]

    admitted = outcomes.count("Success")
    assert 10 <= admitted <= 11, outcomes  # a token may refill during the loop
    assert outcomes[:10] == ["Success"] * 10
    assert outcomes.count("ThrottlingException") == 15 - admitted
    faults = [e["fault"] for e in bench.admin.journal.entries(status=400)]
    in_region = f"{SELLER_KEY[0]} in us-east-1"
    assert faults == [f"quota: BatchMeterUsage over its rate for {in_region}"] * (15 - admitted)


# --- refused admin input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (
            {"operation": "BatchMeterUsage", "error": {"code": "NoSuchError"}},
            "error.code",
            "rule 2: unknown error 'NoSuchError'; known codes: " + ", ".join(sorted(ERROR_CLASSES)),
        ),
        (
            {"operation": "BatchMeterUsage", "probability": 2},
            "probability",
            "rule 2: must be greater than 0 and at most 1",
        ),
        (
            {"operation": "MeterUsage", "unprocessedRecords": {"count": 1}},
            "unprocessedRecords",
            'rule 2: only with "operation": "BatchMeterUsage"',
        ),
        (
            {"operation": "BatchMeterUsage", "latencyMs": -1},
            "latencyMs",
            "rule 2: must be milliseconds from 0 to 60000",
        ),
        (
            {"operation": "BatchMeterUsage", "times": 0},
            "times",
            "rule 2: must be at least 1",
        ),
    ],
    ids=["unknown-error-code", "probability-2", "unprocessed-not-batch", "latency", "times"],
)
def test_a_refused_rule_changes_nothing(
    bench: Bench, bad: dict[str, Any], field: str, message: str
) -> None:
    kept = bench.admin.faults.add({"operation": "RegisterUsage", "times": 3})
    good = {"operation": "MeterUsage"}

    for method in ("POST", "PATCH"):
        for prefix in ("/_marketmeter/faults", "/_localstack/chaos/faults"):
            status, body = admin(bench.url, method, prefix, [good, bad])
            assert status == 400
            assert body == {"error": message, "field": field}

    assert bench.admin.faults.rules() == kept


def test_refused_quota_and_latency_settings_change_nothing(bench: Bench) -> None:
    assert admin(bench.url, "PUT", "/_marketmeter/faults/quota", {"profile": "custom"}) == (
        400,
        {"error": 'the "custom" profile needs at least one rate', "field": "rates"},
    )
    assert admin(
        bench.url, "PUT", "/_marketmeter/faults/quota", {"profile": "custom", "rates": {"X": 1}}
    ) == (
        400,
        {
            "error": "unknown operation; one of BatchMeterUsage, MeterUsage, RegisterUsage, "
            "ResolveCustomer",
            "field": "rates.X",
        },
    )
    assert admin(bench.url, "POST", "/_marketmeter/faults/effects", {"latency": -5}) == (
        400,
        {"error": "must be milliseconds from 0 to 60000", "field": "latency"},
    )
    assert admin(bench.url, "GET", "/_marketmeter/faults/quota") == (
        200,
        {"profile": "off", "rates": {}},
    )
    assert admin(bench.url, "GET", "/_marketmeter/faults/effects") == (200, {"latency": 0})


def test_rule_selection_is_reproducible_from_the_seed_alone(bench: Bench, now: int) -> None:
    """The records a seeded ``count`` rule holds back depend on the seed only."""
    held: list[list[dict[str, Any]]] = []
    for _ in range(2):
        bench.admin.reset()
        bench.admin.faults.add(
            {"operation": "BatchMeterUsage", "seed": 99, "unprocessedRecords": {"count": 3}}
        )
        held.append(bill(metering_client(bench.url), *five_records(now))["UnprocessedRecords"])

    assert held[0] == held[1]
    assert len(held[0]) == 3
