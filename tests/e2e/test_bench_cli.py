"""The test bench commands, run as a user runs them (``python -m marketmeter ...``) against a real
``marketmeter serve``: ``clock``, ``faults``, ``journal``, ``reset`` and ``snapshot``.

One server serves the whole module; every test starts from ``POST /_marketmeter/reset`` (clock,
fault rules, quota and journal as the server started, an empty ledger; fault rules are numbered
from 1 again) with no snapshot. Journal ids keep counting across resets, so tests pin them
relative to the last one before the test's calls. Times are pinned exactly by freezing the
service clock. Each command is a new Python process (about 0.4 s), so setting up goes through
the admin API and commands that only read run side by side.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketmeter.servicemodel.spec import served_operation_names
from tests.e2e.bench_fixtures import metering_client
from tests.e2e.buyers import ALICE_KEY, SELLER_KEY, admin
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import ServerProcess
from tests.e2e.wire_records import record
from tests.ports import free_port

pytestmark = pytest.mark.e2e

T = "2026-11-30T23:30:00Z"
T_EPOCH = 1796081400  # T in epoch seconds
CLOCK_LINE = re.compile(r"(\S+)  (system|offset|frozen)  \(offset ([+-]\d+) s from wall time\)\n")
INTERNAL = "An internal error has occurred. Retry your request."
JOURNAL_HEADER = (
    "    ID  TIME (service clock)        OPERATION        PRODUCT              STATUS  OUTCOME"
)
Run = subprocess.CompletedProcess[str]


# --- the server, the command and the AWS clients -----------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``marketmeter serve`` with tests/data/catalog.yaml for the whole module."""
    process = ServerProcess(tmp_path_factory.mktemp("bench-cli") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def fresh(server: ServerProcess) -> None:
    """Every test starts as the server started: reset, and no snapshot."""
    call(server, "POST", "/reset", {})
    for snapshot in call(server, "GET", "/snapshots")["snapshots"]:
        assert admin(server.url, "DELETE", f"/_marketmeter/snapshots/{snapshot['name']}")[0] == 204


def call(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    """An admin API call that must succeed; its JSON answer."""
    status, answer = admin(server.url, method, f"/_marketmeter{path}", body)
    assert 200 <= status < 300, answer
    return answer


def bench(server: ServerProcess, *args: str, env: dict[str, str] | None = None) -> Run:
    """``python -m marketmeter ARGS`` with ``MARKETMETER_ENDPOINT`` pointing at ``server``."""
    return mm(*args, cwd=server.db.parent, env={"MARKETMETER_ENDPOINT": server.url, **(env or {})})


def side_by_side(server: ServerProcess, *commands: tuple[str, ...]) -> list[Run]:
    """Several commands that change nothing, run at the same time."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: bench(server, *args), commands))


def ok(result: Run) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def snapshot_row(line: str) -> str:
    """The ``snapshot list`` row of a ``snapshot save`` line (widths of the test's names)."""
    name, _, taken, records, _, _, agreements, _, size, _ = line.split()
    return f"{name:<7}  {taken:<21}  {records:<14}  {agreements:<10}  {size}"


def failed(result: Run, code: int = 1) -> str:
    """The stderr of a command that must exit with ``code`` and print nothing else."""
    assert (result.returncode, result.stdout) == (code, ""), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def as_json(value: Any) -> str:
    """How the bench commands print JSON: indented by two, one trailing newline."""
    return json.dumps(value, indent=2) + "\n"


@functools.cache
def aws_client(url: str, key: tuple[str, str], attempts: int, session: str | None) -> Any:
    """boto3's client making ``attempts`` attempts in all (1: no retry), made once."""
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return metering_client(url, key, session, retries=retries)


def seller(server: ServerProcess, attempts: int = 1) -> Any:
    return aws_client(server.url, SELLER_KEY, attempts, None)


def alice(server: ServerProcess, session: str = "i-0001") -> Any:
    """Buyer alice's client; the session token is the instance (or task)."""
    return aws_client(server.url, ALICE_KEY, 1, session)


def batch(client: Any, *records: dict[str, Any], product: str = "prod-legacy") -> Any:
    return client.batch_meter_usage(ProductCode=product, UsageRecords=list(records))


def meter(client: Any, timestamp: int, **params: Any) -> Any:
    """MeterUsage of one vCPU hour of prod-ami (``params`` add or override members)."""
    members = {
        "ProductCode": "prod-ami",
        "Timestamp": timestamp,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
        **params,
    }
    return client.meter_usage(**members)


def aws_error(operation: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of an AWS call that must fail."""
    with pytest.raises(ClientError) as raised:
        operation(*args, **kwargs)
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def statuses(response: Any) -> list[str]:
    return [result["Status"] for result in response["Results"]]


def held(response: Any) -> list[tuple[str, str]]:
    """The UnprocessedRecords of a BatchMeterUsage answer, as (customer, dimension)."""
    return [(r["CustomerIdentifier"], r["Dimension"]) for r in response["UnprocessedRecords"]]


def usage(server: ServerProcess) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = call(server, "GET", "/usage")["records"]
    return records


def freeze_at(server: ServerProcess, moment: str = T) -> None:
    call(server, "PUT", "/clock", {"time": moment})


def journal(server: ServerProcess, query: str = "") -> dict[str, Any]:
    return dict(call(server, "GET", f"/journal{query}"))


def clock_line(text: str) -> tuple[str, str, float]:
    """(now, mode, offset seconds) of the one line ``marketmeter clock`` prints."""
    found = CLOCK_LINE.fullmatch(text)
    assert found is not None, text
    return found[1], found[2], float(found[3])


def epoch_of(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text).timestamp()


def now_minus_a_minute() -> int:
    return int(time.time()) - 60


# --- the help ----------------------------------------------------------------------------------


def test_help_lists_the_bench_commands_and_serve_options(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        top, serve = pool.map(
            lambda args: ok(mm(*args, cwd=tmp_path, env={"COLUMNS": "80"})),
            (("--help",), ("serve", "--help")),
        )

    commands = top.split("\nCommands:\n")[1].splitlines()
    assert [line.split()[0] for line in commands] == [
        *("agreements", "buyers", "catalog", "clock", "db", "deliveries", "events", "faults"),
        *("journal", "keys", "offers", "products", "reset", "sellers", "serve", "snapshot"),
        *("subscribe", "token", "usage"),
    ]
    for line in (
        "  clock       The service clock of a running server.",
        "  faults      Fault rules of a running server.",
        "  journal     The calls a running server answered.",
        "  reset       Empty the ledger; clock, faults and journal back.",
        "  snapshot    Save and restore the whole state by name.",
    ):
        assert line in commands
    assert "  --quota [off|aws]               Throttle per account at AWS's published\n" in serve
    assert "  --journal-size INTEGER RANGE    Calls kept in the request journal (0: no\n" in serve
    assert "                                  journal).  [env var:\n" in serve
    assert "                                  MARKETMETER_JOURNAL_SIZE; default: 10000;\n" in serve
    assert "  --journal-bytes INTEGER RANGE   Bytes of request and response bodies the\n" in serve
    assert "marketmeter faults quota.  [env var:\n" in serve
    assert "                                  MARKETMETER_QUOTA; default: off]\n" in serve


# --- clock -------------------------------------------------------------------------------------


def test_clock_show_set_advance_offset_freeze_reset(server: ServerProcess) -> None:
    shown = ok(bench(server, "clock"))
    now, _, _ = clock_line(shown)
    assert shown == f"{now}  system  (offset +0 s from wall time)\n"
    assert abs(epoch_of(now) - time.time()) < 5

    now, mode, offset = clock_line(ok(bench(server, "clock", "set", T)))
    assert (now, mode) == (T, "frozen")
    assert abs(offset - (T_EPOCH - time.time())) < 5
    state = call(server, "GET", "/clock")
    assert (state["now"], state["epoch"], state["mode"]) == (T, T_EPOCH, "frozen")

    assert clock_line(ok(bench(server, "clock", "advance", "-6h")))[:2] == (
        "2026-11-30T17:30:00Z",
        "frozen",
    )
    assert call(server, "GET", "/clock")["epoch"] == T_EPOCH - 6 * 3600
    assert clock_line(ok(bench(server, "clock", "advance", "90m")))[:2] == (
        "2026-11-30T19:00:00Z",
        "frozen",
    )
    assert call(server, "GET", "/clock")["epoch"] == T_EPOCH - 6 * 3600 + 90 * 60

    now, mode, _ = clock_line(ok(bench(server, "clock", "set", T, "--running")))
    assert mode == "offset"
    assert T_EPOCH <= epoch_of(now) < T_EPOCH + 5
    state = call(server, "GET", "/clock")
    assert state["mode"] == "offset"
    assert T_EPOCH <= state["epoch"] < T_EPOCH + 5

    shown = ok(bench(server, "clock", "offset", "-1h"))
    now, _, _ = clock_line(shown)
    assert shown == f"{now}  offset  (offset -3600 s from wall time)\n"
    assert abs(epoch_of(now) - (time.time() - 3600)) < 5
    state = call(server, "GET", "/clock")
    assert (state["mode"], state["offsetSeconds"]) == ("offset", -3600)

    now, mode, offset = clock_line(ok(bench(server, "clock", "freeze")))
    assert mode == "frozen"
    assert -3605 < offset <= -3600
    assert call(server, "GET", "/clock")["now"] == now  # it stands still

    shown = ok(bench(server, "clock", "reset"))
    now, _, _ = clock_line(shown)
    assert shown == f"{now}  system  (offset +0 s from wall time)\n"
    assert call(server, "GET", "/clock")["mode"] == "system"


def test_bad_clock_input_changes_nothing(server: ServerProcess) -> None:
    freeze_at(server)

    soon, someday = side_by_side(server, ("clock", "advance", "soon"), ("clock", "set", "someday"))

    stderr = failed(soon, code=2)
    assert stderr == (
        "Error: Invalid value for DURATION: 'soon' is not a duration like 90, 15m, 6h or 2d "
        "(see 'marketmeter clock advance --help')\n"
    )
    assert failed(someday) == "Error: time: 'someday' is neither ISO 8601 nor epoch seconds\n"
    assert call(server, "GET", "/clock")["now"] == T


def test_a_large_offset_is_printed_in_whole_seconds(server: ServerProcess) -> None:
    shown = ok(bench(server, "clock", "set", "2020-01-01T00:00:00Z"))

    _, _, offset = clock_line(shown)
    assert shown == f"2020-01-01T00:00:00Z  frozen  (offset {offset:+.0f} s from wall time)\n"
    assert abs(offset - (epoch_of("2020-01-01T00:00:00Z") - time.time())) < 5


# --- where the server is -----------------------------------------------------------------------


def test_endpoint_from_the_option_or_the_environment(server: ServerProcess) -> None:
    freeze_at(server)
    nowhere = {"MARKETMETER_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    runs = [
        lambda: bench(server, "clock", "--endpoint", server.url, env=nowhere),
        lambda: bench(server, "faults", "--endpoint", server.url, "list", "--json", env=nowhere),
        lambda: bench(server, "clock"),  # MARKETMETER_ENDPOINT=server.url
    ]

    with ThreadPoolExecutor(len(runs)) as pool:
        by_option, rules, by_environment = (ok(r) for r in pool.map(lambda run: run(), runs))

    assert clock_line(by_option)[:2] == (T, "frozen")
    assert rules == "[]\n"
    assert clock_line(by_environment)[:2] == (T, "frozen")


def test_an_endpoint_where_nothing_listens(server: ServerProcess) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    commands = [("clock",), ("journal",), ("snapshot", "list")]

    with ThreadPoolExecutor(len(commands)) as pool:
        refused = list(
            pool.map(
                lambda args: failed(bench(server, args[0], "--endpoint", dead, *args[1:])), commands
            )
        )

    for stderr in refused:
        assert stderr.startswith(f"Error: cannot reach marketmeter at {dead} ("), stderr
        assert stderr.endswith("): start it with `marketmeter serve`, or give --endpoint URL\n")
        assert stderr.count("\n") == 1


# --- faults ------------------------------------------------------------------------------------


def test_a_throttling_rule_for_the_next_two_calls(server: ServerProcess) -> None:
    shown = ok(
        bench(
            server,
            *("faults", "add", "--operation", "BatchMeterUsage"),
            *("--error", "ThrottlingException", "--times", "2"),
        )
    )

    assert shown == as_json(
        [
            {
                "id": 1,
                "operation": "BatchMeterUsage",
                "times": 2,
                "error": {"code": "ThrottlingException"},
                "remaining": 2,
                "matched": 0,
                "applied": 0,
            }
        ]
    )
    # boto3 with one retry (what Config(retries={"max_attempts": 1}) gives): both throttled.
    with pytest.raises(ClientError) as raised:
        batch(seller(server, attempts=2), record(now_minus_a_minute()))
    response = raised.value.response
    assert (response["Error"]["Code"], response["Error"]["Message"]) == (
        "ThrottlingException",
        "Rate exceeded",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert ok(bench(server, "faults", "list", "--json")) == "[]\n"  # used up
    assert statuses(batch(seller(server), record(now_minus_a_minute()))) == ["Success"]


def test_unprocessed_records_by_count_and_by_position(server: ServerProcess) -> None:
    now = now_minus_a_minute()
    four = [
        record(now),
        record(now, "cust-bob"),
        record(now, dimension="api_calls"),
        record(now, "cust-bob", "api_calls"),
    ]
    by_count = ok(
        bench(
            server,
            *("faults", "add", "--operation", "BatchMeterUsage"),
            *("--unprocessed", "2", "--seed", "5", "--times", "1"),
        )
    )
    assert json.loads(by_count) == [
        {
            "id": 1,
            "operation": "BatchMeterUsage",
            "seed": 5,
            "times": 1,
            "unprocessedRecords": {"count": 2},
            "remaining": 1,
            "matched": 0,
            "applied": 0,
        }
    ]

    answer = batch(seller(server), *four)  # seed 5 holds back positions 2 and 3 of 4

    assert statuses(answer) == ["Success", "Success"]
    assert held(answer) == [("cust-alice", "api_calls"), ("cust-bob", "api_calls")]
    assert [(r["customerIdentifier"], r["dimension"]) for r in usage(server)] == [
        ("cust-alice", "users"),
        ("cust-bob", "users"),
    ]

    by_position = ok(
        bench(
            server,
            *("faults", "add", "--operation", "BatchMeterUsage"),
            *("--unprocessed-indices", "0,2"),
        )
    )
    assert json.loads(by_position) == [
        {
            "id": 2,
            "operation": "BatchMeterUsage",
            "unprocessedRecords": {"indices": [0, 2]},
            "matched": 0,
            "applied": 0,
        }
    ]

    answer = batch(seller(server), *four[1:])

    assert statuses(answer) == ["Success"]
    assert [r["UsageRecord"]["Dimension"] for r in answer["Results"]] == ["api_calls"]
    assert held(answer) == [("cust-bob", "users"), ("cust-bob", "api_calls")]
    assert len(usage(server)) == 3


def test_a_latency_rule_and_the_global_latency(server: ServerProcess) -> None:
    added = json.loads(ok(bench(server, "faults", "add", "--latency", "250")))
    assert added == [{"id": 1, "latencyMs": 250.0, "matched": 0, "applied": 0}]
    first = journal(server, "?limit=1")["stats"]["lastId"] + 1

    started = time.monotonic()
    assert statuses(batch(seller(server), record(now_minus_a_minute()))) == ["Success"]
    assert time.monotonic() - started >= 0.25
    assert ok(bench(server, "faults", "clear")) == "no fault rules\n"
    assert ok(bench(server, "faults", "latency", "100")) == as_json({"latency": 100.0})
    started = time.monotonic()
    assert statuses(batch(seller(server), record(now_minus_a_minute()))) == ["Success"]
    assert time.monotonic() - started >= 0.1
    assert ok(bench(server, "faults", "latency", "0")) == as_json({"latency": 0.0})

    entries = journal(server)["entries"]
    assert [(e["id"], e["fault"]) for e in entries] == [
        (first, "fault rule 1: latency 250 ms"),
        (first + 1, "global latency 100 ms"),
    ]
    assert entries[0]["durationMs"] >= 250
    assert entries[1]["durationMs"] >= 100


def test_probability_with_a_seed_and_every_nth_call(server: ServerProcess) -> None:
    now = now_minus_a_minute()

    def six_calls() -> list[str]:
        found = []
        for _ in range(6):
            try:
                found.append(statuses(batch(seller(server), record(now)))[0])
            except ClientError as error:
                found.append(error.response["Error"]["Code"])
        return found

    shown = ok(
        bench(
            server,
            *("faults", "add", "--operation", "BatchMeterUsage"),
            *("--error", "ThrottlingException", "--probability", "0.5", "--seed", "1"),
        )
    )

    rule = {
        "id": 1,
        "operation": "BatchMeterUsage",
        "probability": 0.5,
        "seed": 1,
        "error": {"code": "ThrottlingException"},
    }
    assert json.loads(shown) == [{**rule, "matched": 0, "applied": 0}]
    # random.Random(1) draws 0.134, 0.847, 0.764, 0.255, 0.495, 0.449: it fires below 0.5.
    assert six_calls() == [
        "ThrottlingException",
        "Success",
        "Success",
        "ThrottlingException",
        "ThrottlingException",
        "ThrottlingException",
    ]
    assert json.loads(ok(bench(server, "faults", "list", "--json"))) == [
        {**rule, "matched": 6, "applied": 4}
    ]

    call(server, "DELETE", "/faults")
    shown = ok(bench(server, "faults", "add", "--operation", "BatchMeterUsage", "--every", "3"))

    assert json.loads(shown) == [
        {
            "id": 2,
            "operation": "BatchMeterUsage",
            "everyNth": 3,
            "matched": 0,
            "applied": 0,
        }
    ]
    # No --error, --unprocessed or --latency: InternalServiceErrorException (500).
    assert six_calls() == [
        "Success",
        "Success",
        "InternalServiceErrorException",
        "Success",
        "Success",
        "InternalServiceErrorException",
    ]


def test_a_localstack_configuration_then_list_and_remove(server: ServerProcess) -> None:
    # LocalStack's chaos configurations mix services: a rule for S3 is kept, and never fires.
    localstack: list[dict[str, Any]] = [
        {
            "service": "s3",
            "region": "us-east-1",
            "operation": "PutObject",
            "probability": 1.0,
            "error": {"statusCode": 503, "code": "ServiceUnavailable"},
        },
        {
            "service": "marketplace-metering",
            "region": "us-east-1",
            "operation": "MeterUsage",
            "probability": 1.0,
            "error": {"statusCode": 503, "code": "InternalServiceErrorException"},
        },
        {"service": "meteringmarketplace", "region": "eu-west-1"},
    ]

    shown = json.loads(ok(bench(server, "faults", "add", "--rule", json.dumps(localstack))))

    assert shown == [
        {"id": 1, **localstack[0], "matched": 0, "applied": 0},
        {"id": 2, **localstack[1], "matched": 0, "applied": 0},
        {"id": 3, **localstack[2], "matched": 0, "applied": 0},
    ]
    assert aws_error(meter, alice(server), now_minus_a_minute()) == (
        503,
        "InternalServiceErrorException",
        INTERNAL,
    )
    listed = ok(bench(server, "faults", "list", "--json"))
    assert json.loads(listed) == [
        {"id": 1, **localstack[0], "matched": 0, "applied": 0},
        {"id": 2, **localstack[1], "matched": 1, "applied": 1},
        {"id": 3, **localstack[2], "matched": 0, "applied": 0},
    ]
    assert ok(bench(server, "faults", "remove", "2")) == as_json(
        [json.loads(listed)[0], json.loads(listed)[2]]
    )
    assert failed(bench(server, "faults", "remove", "2")) == "Error: id: no fault rule 2\n"
    assert meter(alice(server), now_minus_a_minute())["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ok(bench(server, "faults", "clear")) == "no fault rules\n"
    assert call(server, "GET", "/faults") == []


def test_quota_profiles(server: ServerProcess) -> None:
    assert ok(bench(server, "faults", "quota", "aws")) == as_json(
        {
            "profile": "aws",
            "rates": {"BatchMeterUsage": 10.0, "MeterUsage": 10.0, "RegisterUsage": 5.0},
        }
    )
    assert ok(bench(server, "faults", "quota", "custom", "--rate", "MeterUsage=2")) == as_json(
        {"profile": "custom", "rates": {"MeterUsage": 2.0}}
    )
    # One call per 100 s: the account's second MeterUsage is throttled, whatever the instance.
    ok(bench(server, "faults", "quota", "custom", "--rate", "MeterUsage=0.01"))
    now = now_minus_a_minute()
    assert meter(alice(server), now)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert aws_error(meter, alice(server, "i-0002"), now) == (
        400,
        "ThrottlingException",
        "Rate exceeded",
    )
    assert statuses(batch(seller(server), record(now))) == ["Success"]  # no rate: no limit

    assert ok(bench(server, "faults", "quota", "off")) == as_json({"profile": "off", "rates": {}})
    assert meter(alice(server, "i-0002"), now)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_bad_fault_input_names_the_field(server: ServerProcess) -> None:
    results = side_by_side(
        server,
        ("faults", "add", "--error", "NoSuchError"),
        ("faults", "add", "--unprocessed", "2"),
        ("faults", "quota", "custom"),
        ("faults", "quota", "custom", "--rate", "Subscribe=1"),
        ("faults", "add", "--rule", "{not json"),
        ("faults", "add", "--unprocessed-indices", "0,two", "--operation", "BatchMeterUsage"),
    )

    refusals = [failed(result) for result in results[:4]]
    assert refusals[0].startswith(
        "Error: error.code: unknown error 'NoSuchError'; known codes: "
        "AccessDeniedException, CustomerNotEntitledException, "
    )
    assert refusals[0].endswith(
        ", ThrottlingException, TimestampOutOfBoundsException, UnknownOperationException, "
        "UnrecognizedClientException, ValidationException\n"
    )
    assert refusals[1:] == [
        'Error: unprocessedRecords: only with "operation": "BatchMeterUsage"\n',
        'Error: rates: the "custom" profile needs at least one rate\n',
        "Error: rates.Subscribe: unknown operation; one of BatchMeterUsage, MeterUsage, "
        "RegisterUsage, ResolveCustomer\n",
    ]
    assert failed(results[4], code=2) == (
        "Error: Invalid value for --rule: is not valid JSON (see 'marketmeter faults add -h')\n"
    )
    assert failed(results[5], code=2) == (
        "Error: Invalid value for --unprocessed-indices: must be positions separated by "
        "commas, e.g. 0,3 (see 'marketmeter faults add -h')\n"
    )
    assert call(server, "GET", "/faults") == []
    assert call(server, "GET", "/faults/quota") == {"profile": "off", "rates": {}}


# --- journal -----------------------------------------------------------------------------------


def test_journal_lines_json_and_filters(server: ServerProcess) -> None:
    freeze_at(server)
    call(
        server,
        "PATCH",
        "/faults",
        {"operation": "MeterUsage", "times": 1, "error": {"code": "InternalServiceErrorException"}},
    )
    n = journal(server, "?limit=1")["stats"]["lastId"]

    billed = batch(seller(server), record(T_EPOCH), record(T_EPOCH, "cust-dave"))
    faulted = aws_error(meter, alice(server), T_EPOCH)
    stale = aws_error(batch, seller(server), record(T_EPOCH - 7 * 3600))
    invalid = aws_error(seller(server).resolve_customer, RegistrationToken="garbage")
    metered = meter(alice(server), T_EPOCH, ClientToken="journal-1")

    assert statuses(billed) == ["Success", "CustomerNotSubscribed"]
    assert faulted == (500, "InternalServiceErrorException", INTERNAL)
    assert stale[:2] == (400, "TimestampOutOfBoundsException")
    assert invalid[:2] == (400, "InvalidTokenException")
    lines = {
        1: f"{n + 1:>6}  2026-11-30T23:30:00Z        BatchMeterUsage  prod-legacy"
        "             200  Success CustomerNotSubscribed",
        2: f"{n + 2:>6}  2026-11-30T23:30:00Z        MeterUsage       prod-ami   "
        "             500  InternalServiceErrorException  "
        "[fault rule 1: InternalServiceErrorException]",
        3: f"{n + 3:>6}  2026-11-30T23:30:00Z        BatchMeterUsage  prod-legacy"
        "             400  TimestampOutOfBoundsException",
        4: f"{n + 4:>6}  2026-11-30T23:30:00Z        ResolveCustomer  -          "
        "             400  InvalidTokenException",
        5: f"{n + 5:>6}  2026-11-30T23:30:00Z        MeterUsage       prod-ami   "
        "             200  Success",
    }

    def table(*keys: int) -> str:
        return "\n".join([JOURNAL_HEADER, *(lines[key] for key in keys)]) + "\n"

    results = side_by_side(
        server,
        ("journal",),
        ("journal", "--operation", "MeterUsage"),
        ("journal", "--product", "prod-legacy"),
        ("journal", "--status", "400"),
        ("journal", "--error-type", "InvalidTokenException"),
        ("journal", "--limit", "2"),
        ("journal", "--operation", "RegisterUsage"),
        ("journal", "--json", "--limit", "2"),
        ("journal", "--operation", "Subscribe"),
    )

    assert [ok(result) for result in results[:7]] == [
        table(1, 2, 3, 4, 5),
        table(2, 5),
        table(1, 3),
        table(3, 4),
        table(4),
        table(4, 5),
        table(),
    ]
    entries = json.loads(ok(results[7]))
    assert [entry["id"] for entry in entries] == [n + 4, n + 5]
    last = entries[1]
    assert last.pop("requestId") == metered["ResponseMetadata"]["RequestId"]
    assert abs(epoch_of(last.pop("wallTime")) - time.time()) < 60
    assert last.pop("durationMs") >= 0
    assert last == {
        "id": n + 5,
        "time": T,
        "epoch": T_EPOCH,
        "operation": "MeterUsage",
        "target": "AWSMPMeteringService.MeterUsage",
        "accessKeyId": ALICE_KEY[0],
        "productCode": "prod-ami",
        "status": 200,
        "errorType": None,
        "verdicts": ["Success"],
        "fault": None,
        "request": {
            "ProductCode": "prod-ami",
            "Timestamp": T_EPOCH,
            "UsageDimension": "vcpu_hours",
            "UsageQuantity": 1,
            "ClientToken": "journal-1",
        },
        "response": {"MeteringRecordId": metered["MeteringRecordId"]},
    }
    assert failed(results[8]) == (
        f"Error: operation: must be one of {', '.join(served_operation_names())}\n"
    )


# --- reset -------------------------------------------------------------------------------------


def bill_known_records(server: ServerProcess) -> None:
    """At T: five billed records (three in a batch, two by MeterUsage, one of them with a
    ClientToken claim) and one container registration."""
    batched = batch(
        seller(server),
        record(T_EPOCH),
        record(T_EPOCH, "cust-bob", "api_calls"),
        record(T_EPOCH, dimension="api_calls"),
    )
    assert statuses(batched) == ["Success"] * 3
    agent = {"ProductCode": "prod-agent", "UsageDimension": "invocations", "ClientToken": "tok-1"}
    for params in (agent, {}):
        assert meter(alice(server), T_EPOCH, **params)["ResponseMetadata"]["HTTPStatusCode"] == 200
    task = alice(server, session="task-1")
    task.register_usage(ProductCode="prod-container", PublicKeyVersion=1)


def test_reset_empties_the_ledger_and_puts_the_bench_back(server: ServerProcess) -> None:
    freeze_at(server)
    call(server, "PATCH", "/faults", {"operation": "ResolveCustomer"})
    call(server, "POST", "/faults/effects", {"latency": 1})
    call(server, "PUT", "/faults/quota", {"profile": "aws"})
    bill_known_records(server)

    assert ok(bench(server, "reset")) == (
        "reset: deleted 5 usage_records, 1 request_claims, 1 container_registrations\n"
    )

    assert usage(server) == []
    assert call(server, "GET", "/clock")["mode"] == "system"
    assert call(server, "GET", "/faults") == []
    assert call(server, "GET", "/faults/effects") == {"latency": 0.0}
    assert call(server, "GET", "/faults/quota") == {"profile": "off", "rates": {}}
    assert journal(server)["entries"] == []
    assert ok(bench(server, "reset")) == "reset: deleted nothing\n"
    # Nothing is left to collide with: the same records bill again.
    freeze_at(server)
    bill_known_records(server)
    assert len(usage(server)) == 5


def test_reset_keeps_what_it_is_told_to(server: ServerProcess) -> None:
    freeze_at(server)
    rules = call(server, "PATCH", "/faults", {"operation": "ResolveCustomer"})
    assert statuses(batch(seller(server), record(T_EPOCH))) == ["Success"]

    assert ok(bench(server, "reset", "--keep", "clock", "--keep", "faults")) == (
        "reset: deleted 1 usage_records\n"
    )
    assert call(server, "GET", "/clock")["now"] == T
    assert call(server, "GET", "/faults") == rules
    assert journal(server)["entries"] == []

    assert statuses(batch(seller(server), record(T_EPOCH))) == ["Success"]
    assert ok(bench(server, "reset", "--keep", "journal")) == "reset: deleted 1 usage_records\n"
    assert call(server, "GET", "/clock")["mode"] == "system"
    assert call(server, "GET", "/faults") == []
    [kept] = journal(server)["entries"]
    assert (kept["operation"], kept["time"], kept["verdicts"]) == (
        "BatchMeterUsage",
        T,
        ["Success"],
    )

    assert failed(bench(server, "reset", "--keep", "catalog"), code=2) == (
        "Error: Invalid value for '--keep': 'catalog' is not one of 'clock', 'faults', "
        "'journal' (see 'marketmeter reset -h')\n"
    )


def test_reset_drop_catalog(server: ServerProcess) -> None:
    tokens = len(call(server, "GET", "/tokens")["tokens"])
    call(server, "POST", "/snapshots", {"name": "catalog"})
    now = now_minus_a_minute()
    assert statuses(batch(seller(server), record(now))) == ["Success"]
    try:
        dropped = ok(bench(server, "reset", "--drop-catalog"))
        refused = aws_error(batch, seller(server), record(now))
    finally:
        call(server, "POST", "/snapshots/catalog/restore")

    assert dropped == (
        f"reset: deleted 1 usage_records, {tokens} registration_tokens, 16 agreements, "
        "7 buyers, 7 dimensions, 6 products, 4 access_keys, 2 sellers\n"
    )
    assert refused == (
        400,
        "InvalidProductCodeException",
        "Product code 'prod-legacy' is not a valid SaaS product.",
    )
    assert statuses(batch(seller(server), record(now, "cust-bob"))) == ["Success"]


# --- snapshots ---------------------------------------------------------------------------------


def snapshot_line(server: ServerProcess, name: str) -> str:
    """How the snapshot commands show ``name``, from ``GET /_marketmeter/snapshots/NAME``."""
    info = call(server, "GET", f"/snapshots/{name}")
    counts = info["counts"]
    return (
        f"{name}  taken {info['createdAt']}  {counts['usage_records']} billed record(s), "
        f"{counts['agreements']} agreement(s), {info['sizeBytes']} bytes"
    )


def test_snapshot_save_list_restore_delete(server: ServerProcess) -> None:
    freeze_at(server)
    first = batch(seller(server), record(T_EPOCH), record(T_EPOCH, "cust-bob"))
    ids = [r["MeteringRecordId"] for r in first["Results"]]

    saved = ok(bench(server, "snapshot", "save", "base"))

    base = snapshot_line(server, "base")
    assert base.startswith(f"base  taken {T}  2 billed record(s), 16 agreement(s), ")
    assert saved == f"saved {base}\n"

    call(server, "POST", "/clock/advance", {"seconds": 3600})
    assert statuses(batch(seller(server), record(T_EPOCH + 3600))) == ["Success"]
    later = ok(bench(server, "snapshot", "save", "a-later"))
    assert later.startswith(
        "saved a-later  taken 2026-12-01T00:30:00Z  3 billed record(s), 16 agreement(s), "
    )
    assert ok(bench(server, "snapshot", "list")).splitlines() == [
        "NAME     TAKEN (service clock)  BILLED RECORDS  AGREEMENTS  BYTES",
        *(snapshot_row(line) for line in (later.removeprefix("saved "), base)),
        "2 snapshot(s)",
    ]

    assert ok(bench(server, "snapshot", "restore", "base")) == f"restored {base}\n"
    assert [r["meteringRecordId"] for r in usage(server)] == ids
    assert ok(bench(server, "snapshot", "delete", "base")) == "deleted base\n"

    results = side_by_side(
        server,
        ("snapshot", "list"),
        ("snapshot", "restore", "base"),
        ("snapshot", "delete", "base"),
    )
    assert ok(results[0]).splitlines()[1:] == [
        snapshot_row(later.removeprefix("saved ")),
        "1 snapshot(s)",
    ]
    assert failed(results[1]) == "Error: name: no snapshot named 'base'\n"
    assert failed(results[2]) == "Error: name: no snapshot named 'base'\n"
    assert failed(bench(server, "snapshot", "save", "bad name")) == (
        "Error: name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -\n"
    )
    assert [r["meteringRecordId"] for r in usage(server)] == ids


@pytest.mark.backend_agnostic  # formats, fault rules, quotas: no ledger
def test_an_empty_page_rule_from_the_command_line(server: ServerProcess) -> None:
    added = json.loads(
        ok(
            bench(
                server,
                *("faults", "add", "--operation", "GetEntitlements", "--empty-page"),
                *("--times", "1"),
            )
        )
    )
    assert added == [
        {
            "id": 1,
            "operation": "GetEntitlements",
            "times": 1,
            "emptyPage": True,
            "remaining": 1,
            "matched": 0,
            "applied": 0,
        }
    ]
    refused = bench(server, "faults", "add", "--operation", "MeterUsage", "--empty-page")
    assert refused.returncode == 1
    assert refused.stderr == 'Error: emptyPage: only with "operation": "GetEntitlements"\n'
