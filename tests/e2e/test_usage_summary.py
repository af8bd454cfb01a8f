"""The usage summary of a real server: ``GET /_marketmeter/usage/summary`` and
``marketmeter usage summary`` (table and ``--json``, on ``--endpoint`` and on ``--db``), over
the sample of tests/e2e/billing.py billed once with boto3 (one server for the module).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.billing import Billed, bill_sample, hour_of, iso
from tests.e2e.cli_runner import mm
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("usage-summary") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def billed(shared: ServerProcess) -> Billed:
    return bill_sample(make_client(shared.url), int(time.time()) - 60)


@pytest.fixture
def http(shared: ServerProcess, billed: Billed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.url, timeout=10) as session:
        yield session


def summary(http: httpx.Client, **params: str) -> dict[str, Any]:
    response = http.get("/_marketmeter/usage/summary", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def window(start: int, seconds: int) -> dict[str, str]:
    return {"windowStart": iso(start), "windowEnd": iso(start + seconds)}


def test_hourly_by_product_and_customer(http: httpx.Client, billed: Billed) -> None:
    h0 = hour_of(billed.t0)
    found = summary(http, window="hour", groupBy="product,customer")

    alice, bob = "444455556666", "777788889999"
    legacy, ca = "prod-legacy", "prod-ca"
    assert found["rows"] == [
        {**window(h0, 3600), "productCode": legacy, "customerAWSAccountId": alice}
        | {"dimension": "users", "quantity": 5, "records": 1},
        {**window(h0 + 3600, 3600), "productCode": ca, "customerAWSAccountId": alice}
        | {"dimension": "requests", "quantity": 13, "records": 1},
        {**window(h0 + 3600, 3600), "productCode": legacy, "customerAWSAccountId": bob}
        | {"dimension": "api_calls", "quantity": 7, "records": 1},
        {**window(h0 + 7200, 3600), "productCode": legacy, "customerAWSAccountId": alice}
        | {"dimension": "api_calls", "quantity": 11, "records": 1},
    ]
    assert found["totals"] == [
        {"productCode": ca, "dimension": "requests", "quantity": 13, "records": 1},
        {"productCode": legacy, "dimension": "api_calls", "quantity": 18, "records": 2},
        {"productCode": legacy, "dimension": "users", "quantity": 5, "records": 1},
    ]
    assert found["window"] == "hour"
    assert found["groupBy"] == ["product", "customer", "dimension"]
    assert (found["from"], found["to"], found["truncated"]) == (None, None, False)


def test_never_sums_across_dimensions(http: httpx.Client, billed: Billed) -> None:
    found = summary(http, window="month", product="prod-legacy")
    sums = {(row["dimension"], row["quantity"]) for row in found["rows"]}
    # the sample may straddle a month's end: sum the rows per dimension
    per_dimension: dict[str, int] = {}
    for dimension, quantity in sums:
        per_dimension[dimension] = per_dimension.get(dimension, 0) + quantity
    assert per_dimension == {"api_calls": 18, "users": 5}
    assert found["totals"] == [
        {"dimension": "api_calls", "quantity": 18, "records": 2},
        {"dimension": "users", "quantity": 5, "records": 1},
    ]
    assert all(row["windowStart"].endswith("-01T00:00:00Z") for row in found["rows"])


def test_filters_and_limit(http: httpx.Client, billed: Billed) -> None:
    t0 = billed.t0
    found = summary(
        http, window="hour", customer="cust-alice", **{"from": str(t0 + 1), "limit": "1"}
    )
    assert found["rows"] == [
        {**window(hour_of(t0) + 3600, 3600), "dimension": "requests", "quantity": 13, "records": 1}
    ]
    assert found["truncated"] is True
    assert found["from"] == iso(t0 + 1)
    assert [t["dimension"] for t in found["totals"]] == ["api_calls", "requests"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"window": "week"}, "window", "must be one of hour, day, month"),
        (
            {"groupBy": "seller"},
            "groupBy",
            "'seller' is not a key; keys: product, customer, dimension",
        ),
        ({"limit": "0"}, "limit", "must be a whole number from 1 to 100000"),
        ({"colour": "red"}, "colour", None),
    ],
)
def test_bad_filters(
    http: httpx.Client, params: dict[str, str], field: str, message: str | None
) -> None:
    response = http.get("/_marketmeter/usage/summary", params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field
    if message is not None:
        assert response.json()["error"] == message


def test_cli_table_and_json(shared: ServerProcess, billed: Billed, http: httpx.Client) -> None:
    h0 = hour_of(billed.t0)
    args = ("usage", "summary", "--window", "hour", "--product", "prod-legacy")
    on_server = mm(*args, "--endpoint", shared.url, "--json", cwd=shared.db.parent)
    assert on_server.returncode == 0, on_server.stderr
    assert orjson.loads(on_server.stdout) == summary(http, window="hour", product="prod-legacy")
    table = mm(*args, "--group-by", "customer", "--db", shared.db_url, cwd=shared.db.parent)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "WINDOW (UTC)          CUSTOMER      DIMENSION  QUANTITY  RECORDS",
        f"{iso(h0)}  444455556666  users      5         1",
        f"{iso(h0 + 3600)}  777788889999  api_calls  7         1",
        f"{iso(h0 + 7200)}  444455556666  api_calls  11        1",
        "3 row(s)",
        "total api_calls: 18 (2 record(s))",
        "total users: 5 (1 record(s))",
    ]


def test_cli_says_when_rows_were_left_out(shared: ServerProcess, billed: Billed) -> None:
    table = mm("usage", "summary", "--limit", "1", "--db", shared.db_url, cwd=shared.db.parent)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[2] == "1 row(s) (more rows: raise --limit or narrow the filters)"
    assert lines[3:] == [
        "total api_calls: 18 (2 record(s))",
        "total requests: 13 (1 record(s))",
        "total users: 5 (1 record(s))",
    ]
    bad = mm("usage", "summary", "--window", "week", "--db", shared.db_url, cwd=shared.db.parent)
    assert bad.returncode == 2
