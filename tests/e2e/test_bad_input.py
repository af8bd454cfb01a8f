"""Input that once answered 500 (issue 16), through real clients: a NUL in MeterUsage's
ClientToken (valid by the model: kept the same way on both backends) and numbers far out of
range in the admin API's query parameters (a 400 naming the parameter)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.buyers import ALICE_KEY, ClockControl, buyer_client
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e


def _agent(client: Any, moment: int, quantity: int, token: str) -> str:
    answer = client.meter_usage(
        ProductCode="prod-agent",
        Timestamp=moment,
        UsageDimension="invocations",
        UsageQuantity=quantity,
        ClientToken=token,
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    record_id: str = answer["MeteringRecordId"]
    return record_id


def test_a_nul_in_a_client_token_is_an_ordinary_idempotency_token(server: ServerProcess) -> None:
    moment = int(time.time() // 3600) * 3600 - 86400 + 1800
    ClockControl(server.url).set(moment)
    client = buyer_client(server.url, ALICE_KEY, session="i-nul")

    first = _agent(client, moment, 2, "order\x00one")
    assert _agent(client, moment, 2, "order\x00one") == first  # the retry: the same record
    other = _agent(client, moment, 2, "order\x00two")
    plain = _agent(client, moment, 2, "order")  # a token without the NUL is another token
    assert len({first, other, plain}) == 3

    with pytest.raises(ClientError) as raised:
        _agent(client, moment, 3, "order\x00one")
    assert raised.value.response["Error"] == {
        "Code": "IdempotencyConflictException",
        "Message": "ClientToken 'order\x00one' was already used with different parameters.",
    }
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    listed = httpx.get(f"{server.url}/_marketmeter/usage?product=prod-agent").json()["records"]
    assert sorted(r["meteringRecordId"] for r in listed) == sorted([first, other, plain])


BIG = "9" * 5000  # int() of it raises ValueError: more than 4300 digits

NUMERIC = [
    ("usage", "limit", "must be a whole number from 1 to 100000"),
    ("tokens", "limit", "must be a whole number from 1 to 10000"),
    ("agreements", "limit", "must be a whole number from 1 to 10000"),
    ("events", "limit", "must be a whole number from 1 to 10000"),
    ("events", "after", "must be a whole number from 0 to 4611686018427387904"),
    ("journal", "limit", "must be a whole number from 1 to 10000"),
    ("journal", "after", "must be a whole number from 0 to 4611686018427387904"),
    ("journal", "status", "must be a whole number from 100 to 599"),
]
TIMES = [("usage", "from"), ("usage", "to"), ("events", "since"), ("events", "until")]
TIMES += [("journal", "since"), ("journal", "until")]


@pytest.mark.parametrize(("route", "name", "message"), NUMERIC)
def test_a_count_of_thousands_of_digits_is_a_400_naming_it(
    server: ServerProcess, route: str, name: str, message: str
) -> None:
    for value in (BIG, "1" + "0" * 30, "0" * 5000 + "1" * 30):
        answer = httpx.get(f"{server.url}/_marketmeter/{route}", params={name: value})
        assert (answer.status_code, answer.json()) == (400, {"error": message, "field": name})


@pytest.mark.parametrize(("route", "name"), TIMES)
def test_a_time_out_of_range_is_a_400_naming_it(
    server: ServerProcess, route: str, name: str
) -> None:
    for value in ("1e300", "-1e300", "1e12", BIG):
        answer = httpx.get(f"{server.url}/_marketmeter/{route}", params={name: value})
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "…"
        expected = (
            f"{shown} is not a finite time"
            if value == BIG
            else f"{shown} is out of range (years 1 to 9999)"
        )
        assert (answer.status_code, answer.json()) == (400, {"error": expected, "field": name})


def test_the_journal_shows_a_deeply_nested_request_as_text(server: ServerProcess) -> None:
    body = '{"ProductCode": ' + "[" * 900 + "]" * 900 + "}"
    answer = httpx.post(
        server.url,
        content=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSMPMeteringService.MeterUsage",
        },
    )
    assert answer.status_code == 400
    journal = httpx.get(f"{server.url}/_marketmeter/journal?since=0")
    assert journal.status_code == 200, journal.text
    [entry] = journal.json()["entries"]
    assert entry["request"] == body
