"""The admin API of a real server: ``GET /_marketmeter/health`` and ``/_marketmeter/usage``.

Every test but the empty ledger's only reads: they share one server, on which the sample is
billed once (``billed``); the empty ledger gets a server of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from marketmeter import __version__
from tests.e2e.billing import Billed, bill_sample, check_records, iso
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

TIME_ERROR = "{!r} is neither ISO 8601 nor epoch seconds"
LIMIT_ERROR = "must be a whole number from 1 to 100000"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("admin-usage") / "ledger.db").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def billed(shared: ServerProcess) -> Billed:
    """The sample (tests/e2e/billing.py), billed once on the module's server."""
    return bill_sample(make_client(shared.url), int(time.time()) - 60)


@pytest.fixture
def http(shared: ServerProcess, billed: Billed) -> Iterator[httpx.Client]:
    """A client of the module's server, once the sample is billed on it."""
    with httpx.Client(base_url=shared.url, timeout=10) as session:
        yield session


@pytest.fixture
def empty_http(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client of a fresh server (``server``), on which nothing is billed."""
    with httpx.Client(base_url=server.url, timeout=10) as session:
        yield session


def records(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = http.get("/_marketmeter/usage", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, list[dict[str, Any]]] = response.json()
    assert list(body) == ["records"]
    return body["records"]


def ids(http: httpx.Client, **params: str) -> list[str]:
    return [record["meteringRecordId"] for record in records(http, **params)]


def test_health(http: httpx.Client) -> None:
    response = http.get("/_marketmeter/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "version": __version__, "catalogVersion": 1}


def test_usage_of_an_empty_ledger(empty_http: httpx.Client) -> None:
    assert records(empty_http) == []


def test_usage_lists_every_billed_record(http: httpx.Client, billed: Billed) -> None:
    check_records(billed, records(http), "A", "B", "D", "C")


def test_usage_by_product(http: httpx.Client, billed: Billed) -> None:
    check_records(billed, records(http, product="prod-legacy"), "A", "B", "C")
    check_records(billed, records(http, product="prod-ca"), "D")
    assert ids(http, product="prod-other") == []
    assert ids(http, product="PROD-LEGACY") == []


def test_usage_by_customer(http: httpx.Client, billed: Billed) -> None:
    assert ids(http, customer="444455556666") == billed.keys("A", "D", "C")
    assert ids(http, customer="cust-alice") == billed.keys(
        "A", "D", "C"
    )  # the buyer, whatever the key
    assert ids(http, customer="777788889999") == billed.keys("B")
    assert ids(http, customer="cust-bob") == billed.keys("B")
    assert ids(http, customer="cust-carol") == []  # CustomerNotSubscribed: never billed


def test_usage_by_dimension(http: httpx.Client, billed: Billed) -> None:
    assert ids(http, dimension="api_calls") == billed.keys("B", "C")
    assert ids(http, dimension="users") == billed.keys("A")
    assert ids(http, dimension="Users") == []


def test_usage_by_time(http: httpx.Client, billed: Billed) -> None:
    t0 = billed.t0

    assert ids(http, **{"from": str(t0 + 3600)}) == billed.keys("B", "D", "C")
    assert ids(http, **{"from": iso(t0 + 3600)}) == billed.keys("B", "D", "C")
    assert ids(http, **{"from": str(t0 + 3600.5)}) == billed.keys("D", "C")
    assert ids(http, to=str(t0 + 3600)) == billed.keys("A")  # exclusive
    assert ids(http, to=iso(t0 + 3661)) == billed.keys("A", "B", "D")
    assert ids(http, **{"from": iso(t0), "to": str(t0 + 7200)}) == billed.keys("A", "B", "D")
    assert ids(http, **{"from": str(t0 + 7201)}) == []


def test_usage_limit_and_combined_filters(http: httpx.Client, billed: Billed) -> None:
    assert ids(http, limit="1") == billed.keys("A")
    assert ids(http, limit="3") == billed.keys("A", "B", "D")
    assert ids(http, limit="100000") == billed.keys("A", "B", "D", "C")
    assert ids(http, customer="444455556666", dimension="api_calls") == billed.keys("C")
    assert ids(http, product="prod-legacy", customer="cust-alice", limit="1") == billed.keys("A")
    assert ids(http, product="prod-ca", customer="cust-alice") == billed.keys("D")


def test_empty_filters_are_ignored(http: httpx.Client, billed: Billed) -> None:
    assert ids(http, product="", customer="", dimension="") == billed.keys("A", "B", "D", "C")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from": "yesterday"}, {"error": TIME_ERROR.format("yesterday"), "field": "from"}),
        ({"to": "2026-13-01"}, {"error": TIME_ERROR.format("2026-13-01"), "field": "to"}),
        ({"limit": "0"}, {"error": LIMIT_ERROR, "field": "limit"}),
        ({"limit": "100001"}, {"error": LIMIT_ERROR, "field": "limit"}),
        ({"limit": "-1"}, {"error": LIMIT_ERROR, "field": "limit"}),
        ({"limit": "ten"}, {"error": LIMIT_ERROR, "field": "limit"}),
        (
            {"customr": "cust-alice"},
            {
                "error": "unknown filter; known: customer, dimension, from, limit, product, to",
                "field": "customr",
            },
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    http: httpx.Client, params: dict[str, str], error: dict[str, str]
) -> None:
    response = http.get("/_marketmeter/usage", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error


@pytest.mark.parametrize(
    ("field", "value"),
    [("from", "nan"), ("from", "inf"), ("from", "-inf"), ("from", "1e999"), ("to", "nan")],
)
def test_non_finite_time_is_a_400_naming_the_field(
    http: httpx.Client, field: str, value: str
) -> None:
    response = http.get("/_marketmeter/usage", params={field: value})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["field"] == field
    assert repr(value) in body["error"]


def test_unknown_admin_path_is_a_json_404(http: httpx.Client) -> None:
    response = http.get("/_marketmeter/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "no such admin resource: /_marketmeter/nope"}


def test_wrong_method_is_a_json_405(http: httpx.Client) -> None:
    response = http.post("/_marketmeter/usage", content=b"")

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "POST is not allowed here"}
