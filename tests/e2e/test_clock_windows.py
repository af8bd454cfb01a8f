"""Every window follows the service clock, moved with ``marketmeter clock`` as a seller would:
BatchMeterUsage's 6-hour window and AWS's 24-hour window with its month-end cutoff (``serve
--window 24h-month-end``), MeterUsage's window, registration token expiry, RegisterUsage's ``iat``
and key rotation times, and the ``receivedAt`` of billed records.

The MeterUsage, ResolveCustomer and RegisterUsage suites already pin these rules with the clock
moved through the admin API; here the clock moves through the command line, and the rules they
leave out (BatchMeterUsage's windows, the month end) are pinned to the second. One server per
window policy serves the module; each test starts from ``POST /_marketmeter/reset``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.e2e.bench_fixtures import metering_client
from tests.e2e.buyers import ALICE_KEY, SELLER_KEY, admin
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import record

pytestmark = pytest.mark.e2e

WINDOW_6H = "less than 6 hours in the past and no more than 5 minutes in the future"
WINDOW_24H = (
    "less than 24 hours in the past (previous month only until 06:00 UTC on the 1st) "
    "and no more than 5 minutes in the future"
)


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# --- servers, clock and clients ----------------------------------------------------------------


def _serve(factory: pytest.TempPathFactory, name: str, *options: str) -> Iterator[ServerProcess]:
    process = ServerProcess(factory.mktemp(name) / "ledger.db", CATALOG, *options).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def six_hour_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(tmp_path_factory, "six-hours")


@pytest.fixture(scope="module")
def month_end_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(tmp_path_factory, "month-end", "--window", "24h-month-end")


def fresh(server: ServerProcess) -> ServerProcess:
    status, body = admin(server.url, "POST", "/_marketmeter/reset", {})
    assert status == 200, body
    return server


@pytest.fixture
def server(six_hour_server: ServerProcess) -> ServerProcess:
    """The default server (``--window 6h``), reset."""
    return fresh(six_hour_server)


@pytest.fixture
def month_end(month_end_server: ServerProcess) -> ServerProcess:
    """The server with ``--window 24h-month-end``, reset."""
    return fresh(month_end_server)


def clock(server: ServerProcess, *args: str) -> str:
    """``marketmeter clock ARGS``; the time it prints (the clock must be frozen)."""
    result = mm("clock", *args, cwd=server.db.parent, env={"MARKETMETER_ENDPOINT": server.url})
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    now, mode, _ = result.stdout.split("  ", 2)
    assert mode == "frozen", result.stdout
    return now


@functools.cache
def aws_client(url: str, key: tuple[str, str], session: str | None = None) -> Any:
    """boto3's client, without retries, made once."""
    return metering_client(url, key, session)


def seller(server: ServerProcess) -> Any:
    return aws_client(server.url, SELLER_KEY)


def billed(server: ServerProcess, *records: dict[str, Any]) -> list[str]:
    """Bill ``records`` (each on its own), which must all succeed; their MeteringRecordIds."""
    ids = []
    for one in records:
        [result] = seller(server).batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[one])[
            "Results"
        ]
        assert result["Status"] == "Success", result
        ids.append(result["MeteringRecordId"])
    return ids


def refusal(client: Any, operation: str, **params: Any) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a call that must fail."""
    with pytest.raises(ClientError) as raised:
        getattr(client, operation)(**params)
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def out_of_batch_window(timestamp: int, window: str) -> tuple[int, str, str]:
    return (
        400,
        "TimestampOutOfBoundsException",
        f"The timestamp of usageRecords.1 ({timestamp}) is out of the allowed range: "
        f"usage must be {window}.",
    )


def refused_batch(server: ServerProcess, one: dict[str, Any]) -> tuple[int, str, str]:
    return refusal(
        seller(server), "batch_meter_usage", ProductCode="prod-legacy", UsageRecords=[one]
    )


def usage(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = admin(server.url, "GET", "/_marketmeter/usage")
    assert status == 200, body
    records: list[dict[str, Any]] = body["records"]
    return records


def received(server: ServerProcess) -> list[tuple[str, float, str]]:
    """Every billed record as (customer, usage timestamp, receivedAt), oldest usage first."""
    return [(r["customerIdentifier"], r["timestamp"], r["receivedAt"]) for r in usage(server)]


# --- BatchMeterUsage, 6 hours ------------------------------------------------------------------


def test_the_six_hour_batch_window_follows_the_clock(server: ServerProcess) -> None:
    t = epoch(clock(server, "set", "2026-11-30T23:30:00Z"))
    oldest = t - 5 * 3600 - 59 * 60  # 5 h 59 min before the clock

    [first] = billed(server, record(oldest))
    assert clock(server, "advance", "2m") == "2026-11-30T23:32:00Z"  # now 6 h 1 min old

    assert refused_batch(server, record(oldest, "cust-bob")) == (
        out_of_batch_window(oldest, WINDOW_6H)
    )
    assert refused_batch(server, record(oldest)) == out_of_batch_window(oldest, WINDOW_6H)

    assert clock(server, "advance", "-61s") == "2026-11-30T23:30:59Z"  # 5 h 59 min 59 s old
    [second] = billed(server, record(oldest, "cust-bob"))
    # The future skew is judged on the clock too: 5 minutes ahead of it, not of the wall.
    billed(server, record(t + 59 + 300, dimension="api_calls"))
    assert refused_batch(server, record(t + 59 + 301, "cust-bob", "api_calls")) == (
        out_of_batch_window(t + 59 + 301, WINDOW_6H)
    )

    assert [r["meteringRecordId"] for r in usage(server)[:2]] == [first, second]
    assert received(server) == [
        ("cust-alice", oldest, "2026-11-30T23:30:00Z"),
        ("cust-bob", oldest, "2026-11-30T23:30:59Z"),
        ("cust-alice", t + 359, "2026-11-30T23:30:59Z"),
    ]


# --- BatchMeterUsage, 24 hours and the month end -----------------------------------------------


def test_the_24_hour_window_and_the_month_end_cutoff_follow_the_clock(
    month_end: ServerProcess,
) -> None:
    server = month_end
    assert clock(server, "set", "2026-11-30T23:30:00Z") == "2026-11-30T23:30:00Z"
    day_old = epoch("2026-11-29T23:30:00Z")
    billed(server, record(day_old + 1))  # 23 h 59 min 59 s old: a 6-hour window would refuse it
    assert refused_batch(server, record(day_old, "cust-bob")) == (
        out_of_batch_window(day_old, WINDOW_24H)
    )

    # The 1st of December: November's usage until 06:00 UTC, and still at most 24 hours old.
    assert clock(server, "set", "2026-12-01T05:59:59Z") == "2026-12-01T05:59:59Z"
    last_of_november = epoch("2026-11-30T23:59:59Z")
    billed(
        server,
        record(last_of_november, dimension="api_calls"),
        record(epoch("2026-11-30T06:00:00Z"), "cust-bob"),
    )
    assert refused_batch(server, record(epoch("2026-11-30T05:59:59Z"), "cust-bob")) == (
        out_of_batch_window(epoch("2026-11-30T05:59:59Z"), WINDOW_24H)
    )

    assert clock(server, "advance", "1s") == "2026-12-01T06:00:00Z"
    assert refused_batch(server, record(last_of_november, "cust-bob", "api_calls")) == (
        out_of_batch_window(last_of_november, WINDOW_24H)
    )
    billed(server, record(epoch("2026-12-01T00:00:00Z"), "cust-bob", "api_calls"))

    # Across the year too: December's usage until 06:00 UTC on January 1st.
    assert clock(server, "set", "2027-01-01T05:59:59Z") == "2027-01-01T05:59:59Z"
    new_years_eve = epoch("2026-12-31T12:00:00Z")
    billed(server, record(new_years_eve))
    assert clock(server, "advance", "1s") == "2027-01-01T06:00:00Z"
    assert refused_batch(server, record(new_years_eve, "cust-bob")) == (
        out_of_batch_window(new_years_eve, WINDOW_24H)
    )

    assert received(server) == [
        ("cust-alice", day_old + 1, "2026-11-30T23:30:00Z"),
        ("cust-bob", epoch("2026-11-30T06:00:00Z"), "2026-12-01T05:59:59Z"),
        ("cust-alice", last_of_november, "2026-12-01T05:59:59Z"),
        ("cust-bob", epoch("2026-12-01T00:00:00Z"), "2026-12-01T06:00:00Z"),
        ("cust-alice", new_years_eve, "2027-01-01T05:59:59Z"),
    ]


def test_meter_usage_keeps_six_hours_under_the_month_end_policy(
    month_end: ServerProcess,
) -> None:
    server = month_end
    t = epoch(clock(server, "set", "2026-12-01T06:00:00Z"))
    instance = aws_client(server.url, ALICE_KEY, "i-0001")
    members = {"ProductCode": "prod-ami", "UsageDimension": "vcpu_hours", "UsageQuantity": 1}

    instance.meter_usage(Timestamp=t - 6 * 3600 + 1, **members)

    assert refusal(instance, "meter_usage", Timestamp=t - 6 * 3600, **members) == (
        400,
        "TimestampOutOfBoundsException",
        f"The timestamp ({t - 6 * 3600}) is out of the allowed range: usage must be {WINDOW_6H}.",
    )


# --- MeterUsage --------------------------------------------------------------------------------


def test_the_meter_usage_window_follows_the_clock(server: ServerProcess) -> None:
    t = epoch(clock(server, "set", "2026-11-30T23:30:00Z"))
    instance = aws_client(server.url, ALICE_KEY, "i-0001")
    oldest = t - 6 * 3600 + 30
    members = {
        "ProductCode": "prod-ami",
        "Timestamp": oldest,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 3,
    }

    record_id = instance.meter_usage(**members)["MeteringRecordId"]
    assert clock(server, "advance", "29s") == "2026-11-30T23:30:29Z"
    assert instance.meter_usage(**members)["MeteringRecordId"] == record_id  # a replay
    assert clock(server, "advance", "1s") == "2026-11-30T23:30:30Z"  # exactly 6 hours old

    assert refusal(instance, "meter_usage", **members) == (
        400,
        "TimestampOutOfBoundsException",
        f"The timestamp ({oldest}) is out of the allowed range: usage must be {WINDOW_6H}.",
    )
    [row] = usage(server)
    assert (row["meteringRecordId"], row["quantity"], row["receivedAt"]) == (
        record_id,
        3,
        "2026-11-30T23:30:00Z",  # the first call's clock; the replay billed nothing
    )


# --- registration tokens -----------------------------------------------------------------------


def test_registration_tokens_expire_on_the_clock(server: ServerProcess) -> None:
    clock(server, "set", "2026-11-30T23:30:00Z")
    status, minted = admin(
        server.url,
        "POST",
        "/_marketmeter/tokens",
        {"productCode": "prod-legacy", "buyerAccountId": "777788889999"},
    )
    assert status == 201, minted
    assert (minted["issuedAt"], minted["expiresAt"]) == (
        "2026-11-30T23:30:00Z",
        "2026-12-01T03:30:00Z",
    )
    client = seller(server)
    token = minted["token"]
    assert client.resolve_customer(RegistrationToken=token)["CustomerIdentifier"] == "cust-bob"

    assert clock(server, "advance", "4h") == "2026-12-01T03:30:00Z"

    assert refusal(client, "resolve_customer", RegistrationToken=token) == (
        400,
        "ExpiredTokenException",
        "The registration token expired at 2026-12-01T03:30:00Z.",
    )
    assert clock(server, "advance", "-1s") == "2026-12-01T03:29:59Z"
    assert client.resolve_customer(RegistrationToken=token)["CustomerIdentifier"] == "cust-bob"


# --- RegisterUsage -----------------------------------------------------------------------------


def public_key(server: ServerProcess, version: int) -> str:
    status, pem = admin(server.url, "GET", f"/_marketmeter/keys/{version}")
    assert status == 200, pem
    assert isinstance(pem, str)
    return pem


def claims(signature: str, pem: str) -> dict[str, Any]:
    """The verified claims; ``iat`` is not held against this machine's clock (the service
    clock may stand anywhere)."""
    found: dict[str, Any] = jwt.decode(
        signature, pem, algorithms=["PS256"], options={"verify_iat": False}
    )
    return found


def test_register_usage_iat_and_key_rotation_follow_the_clock(server: ServerProcess) -> None:
    t = epoch(clock(server, "set", "2026-11-30T23:30:00Z"))
    task = aws_client(server.url, ALICE_KEY, "task-1")
    status, listed = admin(server.url, "GET", "/_marketmeter/keys")
    assert status == 200, listed
    current = max((key["version"] for key in listed["keys"]), default=1)

    signed = task.register_usage(
        ProductCode="prod-container", PublicKeyVersion=current, Nonce="before"
    )
    assert claims(signed["Signature"], public_key(server, current)) == {
        "productCode": "prod-container",
        "publicKeyVersion": current,
        "nonce": "before",
        "iat": t,
    }

    assert clock(server, "advance", "10m") == "2026-11-30T23:40:00Z"
    status, rotated = admin(server.url, "POST", "/_marketmeter/keys/rotate")
    assert status == 201, rotated
    assert (rotated["version"], rotated["createdAt"]) == (current + 1, "2026-11-30T23:40:00Z")
    assert clock(server, "advance", "1m") == "2026-11-30T23:41:00Z"

    retired = task.register_usage(
        ProductCode="prod-container", PublicKeyVersion=current, Nonce="after"
    )

    assert retired["PublicKeyRotationTimestamp"] == datetime(2026, 11, 30, 23, 40, tzinfo=UTC)
    assert claims(retired["Signature"], public_key(server, current)) == {
        "productCode": "prod-container",
        "publicKeyVersion": current,
        "nonce": "after",
        "iat": t + 660,
    }
    status, listed = admin(server.url, "GET", "/_marketmeter/keys")
    assert status == 200, listed
    assert [(k["version"], k["retiredAt"]) for k in listed["keys"]][-2:] == [
        (current, "2026-11-30T23:40:00Z"),
        (current + 1, None),
    ]
