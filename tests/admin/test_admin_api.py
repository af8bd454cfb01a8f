"""The admin API under ``/_marketmeter/`` in process (``httpx.ASGITransport``): the service clock
(``/clock``), registration tokens (``/tokens``) and RegisterUsage public keys (``/keys``), every
happy path and every 400/404 answer, on a real ledger of each backend (SQLite, PostgreSQL) with
``tests/data/catalog.yaml`` and a ``ServiceClock`` over a fixed wall clock."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from marketmeter.app import MarketmeterApp
from marketmeter.config import Settings
from marketmeter.metering.clock import Clock, FixedClock, ServiceClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.metering.signing_keys import new_rsa_key_pair
from marketmeter.store.base import OperatorStore

WALL = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
EPOCH = 1795437000.0  # WALL in epoch seconds
T1 = 1893456000.0  # 2030-01-01T00:00:00Z
ALICE = "444455556666"
BOB = "777788889999"
DAVE = "555566667777"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
PEM = "application/x-pem-file"


@functools.cache
def _key_pool() -> tuple[tuple[str, str], ...]:
    """Two RSA key pairs made once (2048-bit generation is slow); versions get them in turn."""
    return (new_rsa_key_pair(), new_rsa_key_pair())


def pooled_key_pairs() -> Callable[[], tuple[str, str]]:
    counter = itertools.count()
    return lambda: _key_pool()[next(counter) % 2]


def token_value(n: int) -> str:
    """The n-th value of ``SequentialTokens()``."""
    return "test-token-" + str(n).rjust(53, "0")


JSON_TYPE = {"Content-Type": "application/json"}


class Admin:
    """The app in process, with its wall clock and service clock at hand."""

    def __init__(self, store: OperatorStore, clock: Clock | None = None) -> None:
        self.wall = FixedClock(WALL)
        self.clock = clock or ServiceClock(wall=self.wall)
        self.app = MarketmeterApp(
            Settings(),
            store,
            self.clock,
            SequentialIds(),
            SequentialIds(start=1000),
            tokens=SequentialTokens(),
            key_pairs=pooled_key_pairs(),
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            # an unhandled error comes back as the 500 a client would see
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8686"
            ) as client:
                return await client.request(
                    method,
                    f"/_marketmeter{path}",
                    json=body,
                    content=content,
                    # raw bytes are sent as the JSON they try to be (the browser guard's
                    # refusal of other types is tested on its own)
                    headers=JSON_TYPE if content is not None else None,
                    params=params,
                )

        return asyncio.run(send())

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **kw: Any) -> Any:
        response = self.call(method, path, body, **kw)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()

    def problem(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        response = self.call(method, path, body, **kw)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/json"
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
def admin(store: OperatorStore) -> Admin:
    return Admin(store)


def clock_state(now: str, epoch: float, mode: str, offset: float) -> dict[str, Any]:
    return {"now": now, "epoch": epoch, "mode": mode, "offsetSeconds": offset}


SYSTEM = clock_state("2026-11-23T12:30:00Z", EPOCH, "system", 0.0)


# --- clock: happy paths ------------------------------------------------------------------------


def test_get_clock_reads_wall_time(admin: Admin) -> None:
    assert admin.ok("GET", "/clock") == SYSTEM
    admin.wall.advance(timedelta(seconds=2.5))
    assert admin.ok("GET", "/clock") == clock_state(
        "2026-11-23T12:30:02.500000Z", EPOCH + 2.5, "system", 0.0
    )


@pytest.mark.parametrize(
    "time",
    [
        "2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00",  # no zone: UTC
        "2030-01-01T02:00:00+02:00",
        T1,
        int(T1),
        "1893456000",
    ],
)
def test_put_time_freezes_by_default(admin: Admin, time: Any) -> None:
    frozen = clock_state("2030-01-01T00:00:00Z", T1, "frozen", T1 - EPOCH)
    assert admin.ok("PUT", "/clock", {"time": time}) == frozen
    admin.wall.advance(timedelta(minutes=1))
    assert admin.ok("GET", "/clock")["now"] == "2030-01-01T00:00:00Z"
    assert admin.clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_put_time_running(admin: Admin) -> None:
    running = clock_state("2030-01-01T00:00:00Z", T1, "offset", T1 - EPOCH)
    assert admin.ok("PUT", "/clock", {"time": "2030-01-01T00:00:00Z", "frozen": False}) == running
    admin.wall.advance(timedelta(seconds=10))
    assert admin.ok("GET", "/clock") == clock_state(
        "2030-01-01T00:00:10Z", T1 + 10, "offset", T1 - EPOCH
    )


def test_put_offset_seconds(admin: Admin) -> None:
    assert admin.ok("PUT", "/clock", {"offsetSeconds": -3600}) == clock_state(
        "2026-11-23T11:30:00Z", EPOCH - 3600, "offset", -3600.0
    )
    assert admin.ok("PUT", "/clock", {"offsetSeconds": 0.5}) == clock_state(
        "2026-11-23T12:30:00.500000Z", EPOCH + 0.5, "offset", 0.5
    )
    assert admin.ok("PUT", "/clock", {"offsetSeconds": 60, "frozen": True}) == clock_state(
        "2026-11-23T12:31:00Z", EPOCH + 60, "frozen", 60.0
    )
    admin.wall.advance(timedelta(seconds=30))
    assert admin.ok("GET", "/clock")["now"] == "2026-11-23T12:31:00Z"


def test_put_frozen_stops_the_clock_where_it_reads(admin: Admin) -> None:
    admin.ok("PUT", "/clock", {"offsetSeconds": 120})
    assert admin.ok("PUT", "/clock", {"frozen": True}) == clock_state(
        "2026-11-23T12:32:00Z", EPOCH + 120, "frozen", 120.0
    )
    admin.wall.advance(timedelta(seconds=20))
    assert admin.ok("GET", "/clock") == clock_state(
        "2026-11-23T12:32:00Z", EPOCH + 120, "frozen", 100.0
    )


def test_advance_running_and_frozen(admin: Admin) -> None:
    assert admin.ok("POST", "/clock/advance", {"seconds": 3600}) == clock_state(
        "2026-11-23T13:30:00Z", EPOCH + 3600, "offset", 3600.0
    )
    assert admin.ok("POST", "/clock/advance", {"seconds": -3600}) == SYSTEM
    admin.ok("PUT", "/clock", {"time": T1})
    assert admin.ok("POST", "/clock/advance", {"seconds": 14400.25}) == clock_state(
        "2030-01-01T04:00:00.250000Z", T1 + 14400.25, "frozen", T1 + 14400.25 - EPOCH
    )


def test_delete_resets_to_wall_time(admin: Admin) -> None:
    admin.ok("PUT", "/clock", {"time": T1})
    assert admin.ok("DELETE", "/clock") == SYSTEM
    admin.ok("PUT", "/clock", {"offsetSeconds": 99})
    assert admin.ok("DELETE", "/clock") == SYSTEM


# --- clock: 400s -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        (
            {"tme": "2030-01-01T00:00:00Z"},
            "tme",
            "unknown field; known: frozen, offsetSeconds, time",
        ),
        ({"time": "yesterday"}, "time", "'yesterday' is neither ISO 8601 nor epoch seconds"),
        (
            {"time": "2030-13-01T00:00:00Z"},
            "time",
            "'2030-13-01T00:00:00Z' is neither ISO 8601 nor epoch seconds",
        ),
        ({"time": ""}, "time", "'' is neither ISO 8601 nor epoch seconds"),
        ({"time": "inf"}, "time", "'inf' is not a finite time"),
        ({"time": "nan"}, "time", "'nan' is not a finite time"),
        ({"time": True}, "time", "must be ISO 8601 text or epoch seconds"),
        ({"time": None}, "time", "must be ISO 8601 text or epoch seconds"),
        ({"time": [T1]}, "time", "must be ISO 8601 text or epoch seconds"),
        ({"time": 1e20}, "time", "'1e+20' is out of range (years 1 to 9999)"),
        ({"time": T1, "frozen": "yes"}, "frozen", "must be true or false"),
        ({"frozen": 1}, "frozen", "must be true or false"),
        ({"time": T1, "offsetSeconds": 5}, "offsetSeconds", "give either time or offsetSeconds"),
        ({"offsetSeconds": "60"}, "offsetSeconds", "must be a finite number of seconds"),
        ({"offsetSeconds": False}, "offsetSeconds", "must be a finite number of seconds"),
        ({"offsetSeconds": 4e9}, "offsetSeconds", "must be within 100 years"),
        ({"frozen": False}, "time", "give time, offsetSeconds or frozen: true"),
        ({}, "time", "give time, offsetSeconds or frozen: true"),
        ([T1], "body", "must be a JSON object"),
        ("2030-01-01T00:00:00Z", "body", "must be a JSON object"),
    ],
)
def test_put_clock_bad_input(admin: Admin, body: Any, field: str, error: str) -> None:
    assert admin.problem("PUT", "/clock", body) == {"error": error, "field": field}
    assert admin.ok("GET", "/clock") == SYSTEM  # unchanged


@pytest.mark.parametrize(
    ("content", "field", "error"),
    [
        (b'{"time": ', "body", "is not valid JSON"),
        (b"{'time': 1}", "body", "is not valid JSON"),
        (b'{"offsetSeconds": NaN}', "body", "is not valid JSON"),
        (b"   ", "time", "give time, offsetSeconds or frozen: true"),  # empty body is {}
    ],
)
def test_put_clock_bad_json(admin: Admin, content: bytes, field: str, error: str) -> None:
    assert admin.problem("PUT", "/clock", content=content) == {"error": error, "field": field}


@pytest.mark.parametrize(
    ("content", "field", "error"),
    [
        (b'{"seconds": NaN}', "body", "is not valid JSON"),
        (b'{"seconds": Infinity}', "body", "is not valid JSON"),
        (b'{"seconds": "10"}', "seconds", "must be a finite number of seconds"),
        (b'{"seconds": true}', "seconds", "must be a finite number of seconds"),
        (b'{"seconds": null}', "seconds", "must be a finite number of seconds"),
        (b"{}", "seconds", "must be a finite number of seconds"),
        (b"", "seconds", "must be a finite number of seconds"),
        (b'{"seconds": 1e300}', "seconds", "must be within 100 years"),
        (b'{"seconds": -4e9}', "seconds", "must be within 100 years"),
        (b"[10]", "body", "must be a JSON object"),
        (b"10", "body", "must be a JSON object"),
    ],
)
def test_advance_bad_input(admin: Admin, content: bytes, field: str, error: str) -> None:
    response = admin.call("POST", "/clock/advance", content=content)
    assert response.status_code == 400
    assert response.json() == {"error": error, "field": field}
    assert admin.ok("GET", "/clock") == SYSTEM


RANGE = "the clock must stay between 1970 and 9000"


@pytest.mark.parametrize(
    ("time", "seconds"), [("8999-12-31T23:00:00Z", 7200), ("1970-01-01T01:00:00Z", -7200)]
)
def test_advance_out_of_the_supported_range_is_refused(
    admin: Admin, time: str, seconds: int
) -> None:
    before = admin.ok("PUT", "/clock", {"time": time})
    assert admin.problem("POST", "/clock/advance", {"seconds": seconds}) == {
        "error": RANGE,
        "field": "seconds",
    }
    assert admin.ok("GET", "/clock") == before


@pytest.mark.parametrize(
    "time", ["9999-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
)
def test_times_a_running_clock_could_overflow_from_are_refused(admin: Admin, time: str) -> None:
    before = admin.ok("GET", "/clock")
    assert admin.problem("PUT", "/clock", {"time": time, "frozen": False}) == {
        "error": RANGE,
        "field": "time",
    }
    assert admin.ok("GET", "/clock") == before


def test_a_fixed_clock_is_read_but_cannot_be_moved(store: OperatorStore) -> None:
    admin = Admin(store, FixedClock(WALL))
    assert admin.ok("GET", "/clock") == clock_state("2026-11-23T12:30:00Z", EPOCH, "frozen", 0.0)
    expected = {"error": "this server's clock cannot be moved", "field": "clock"}
    assert admin.problem("PUT", "/clock", {"time": T1}) == expected
    assert admin.problem("POST", "/clock/advance", {"seconds": 1}) == expected
    assert admin.problem("DELETE", "/clock") == expected


def test_unknown_resource_and_method(admin: Admin) -> None:
    response = admin.call("GET", "/nope")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "no such admin resource: /_marketmeter/nope"},
    )
    response = admin.call("PATCH", "/clock", {"time": T1})
    assert (response.status_code, response.json()) == (405, {"error": "PATCH is not allowed here"})


# --- tokens ------------------------------------------------------------------------------------


def test_mint_a_token(admin: Admin) -> None:
    minted = admin.ok(
        "POST", "/tokens", {"productCode": "prod-legacy", "buyerAccountId": ALICE}, status=201
    )
    assert minted == {
        "token": token_value(1),
        "productCode": "prod-legacy",
        "customerAWSAccountId": ALICE,
        "licenseArn": ALICE_LEGACY,
        "offerType": None,
        "issuedAt": "2026-11-23T12:30:00Z",
        "expiresAt": "2026-11-23T16:30:00Z",
        "expired": False,
    }
    assert admin.ok("GET", "/tokens") == {"tokens": [minted]}


def test_mint_with_license_arn_and_free_trial_on_the_service_clock(admin: Admin) -> None:
    admin.ok("PUT", "/clock", {"time": "2026-11-23T12:45:30.750Z"})
    body = {
        "productCode": "prod-ca",
        "buyerAccountId": ALICE,
        "licenseArn": ALICE_CA,
        "freeTrial": True,
    }
    minted = admin.ok("POST", "/tokens", body, status=201)
    assert minted == {
        "token": token_value(1),
        "productCode": "prod-ca",
        "customerAWSAccountId": ALICE,
        "licenseArn": ALICE_CA,
        "offerType": "free-trial",
        "issuedAt": "2026-11-23T12:45:30Z",
        "expiresAt": "2026-11-23T16:45:30Z",
        "expired": False,
    }
    body["freeTrial"] = False
    assert admin.ok("POST", "/tokens", body, status=201)["offerType"] is None


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"buyerAccountId": ALICE}, "productCode", "is required (a non-empty string)"),
        (
            {"productCode": "", "buyerAccountId": ALICE},
            "productCode",
            "is required (a non-empty string)",
        ),
        (
            {"productCode": 7, "buyerAccountId": ALICE},
            "productCode",
            "is required (a non-empty string)",
        ),
        ({"productCode": "prod-legacy"}, "buyerAccountId", "is required (a non-empty string)"),
        (
            {"productCode": "nope", "buyerAccountId": ALICE},
            "productCode",
            "no product with product code 'nope'",
        ),
        (
            {"productCode": "prod-container", "buyerAccountId": ALICE},
            "productCode",
            "prod-container is not a SaaS product (kind: container); "
            "registration tokens are for SaaS products",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": "123456789012"},
            "buyerAccountId",
            "no buyer with account id '123456789012'",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": DAVE},
            "buyerAccountId",
            f"buyer {DAVE} has no active agreement for prod-legacy; subscribe first: "
            f"marketmeter subscribe --product prod-legacy --buyer {DAVE}",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": ALICE, "licenseArn": 5},
            "licenseArn",
            "must be a string",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": ALICE, "licenseArn": BOB_LEGACY},
            "licenseArn",
            f"{BOB_LEGACY} is not an agreement of buyer {ALICE} for prod-legacy",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": ALICE, "freeTrial": "yes"},
            "freeTrial",
            "must be true or false",
        ),
        (
            {"productCode": "prod-legacy", "buyerAccountId": ALICE, "buyer": ALICE},
            "buyer",
            "unknown field; known: buyerAccountId, freeTrial, licenseArn, productCode",
        ),
        ([], "body", "must be a JSON object"),
        (None, "productCode", "is required (a non-empty string)"),  # no body: {}
    ],
)
def test_mint_bad_input(admin: Admin, body: Any, field: str, error: str) -> None:
    assert admin.problem("POST", "/tokens", body) == {"error": error, "field": field}
    assert admin.ok("GET", "/tokens") == {"tokens": []}


@pytest.mark.parametrize("content", [b"{", b'{"productCode": NaN}', b"productCode=prod-legacy"])
def test_mint_bad_json(admin: Admin, content: bytes) -> None:
    problem = admin.problem("POST", "/tokens", content=content)
    assert problem == {"error": "is not valid JSON", "field": "body"}


def test_list_tokens_newest_first_with_filters_and_limit(admin: Admin) -> None:
    def mint(product: str, buyer: str) -> str:
        body = {"productCode": product, "buyerAccountId": buyer}
        value: str = admin.ok("POST", "/tokens", body, status=201)["token"]
        admin.ok("POST", "/clock/advance", {"seconds": 60})
        return value

    first = mint("prod-legacy", ALICE)
    second = mint("prod-ca", ALICE)
    third = mint("prod-legacy", BOB)

    def listed(**params: str) -> list[str]:
        return [t["token"] for t in admin.ok("GET", "/tokens", params=params)["tokens"]]

    assert listed() == [third, second, first]
    assert listed(product="prod-legacy") == [third, first]
    assert listed(buyer=ALICE) == [second, first]
    assert listed(product="prod-ca", buyer=BOB) == []
    assert listed(limit="2") == [third, second]
    assert listed(limit="10000", buyer=BOB) == [third]
    assert listed(product="no-such-product") == []


def test_listed_tokens_show_expiry_on_the_service_clock(admin: Admin) -> None:
    admin.ok("POST", "/tokens", {"productCode": "prod-legacy", "buyerAccountId": ALICE}, status=201)
    admin.ok("POST", "/clock/advance", {"seconds": 14399})
    assert [t["expired"] for t in admin.ok("GET", "/tokens")["tokens"]] == [False]
    admin.ok("POST", "/clock/advance", {"seconds": 1})
    [listed] = admin.ok("GET", "/tokens")["tokens"]
    assert (listed["expiresAt"], listed["expired"]) == ("2026-11-23T16:30:00Z", True)


def test_list_tokens_superscript_limit_is_refused(admin: Admin) -> None:
    problem = admin.problem("GET", "/tokens", params={"limit": "\u00b2"})
    assert problem == {"error": "must be a whole number from 1 to 10000", "field": "limit"}


@pytest.mark.parametrize(
    ("params", "field", "error"),
    [
        ({"limit": "0"}, "limit", "must be a whole number from 1 to 10000"),
        ({"limit": "10001"}, "limit", "must be a whole number from 1 to 10000"),
        ({"limit": "-1"}, "limit", "must be a whole number from 1 to 10000"),
        ({"limit": "abc"}, "limit", "must be a whole number from 1 to 10000"),
        ({"limit": "1.5"}, "limit", "must be a whole number from 1 to 10000"),
        ({"limit": ""}, "limit", "must be a whole number from 1 to 10000"),
        ({"customer": ALICE}, "customer", "unknown filter; known: buyer, limit, product"),
    ],
)
def test_list_tokens_bad_filters(
    admin: Admin, params: dict[str, str], field: str, error: str
) -> None:
    assert admin.problem("GET", "/tokens", params=params) == {"error": error, "field": field}


# --- keys --------------------------------------------------------------------------------------


def test_keys_list_creates_version_1(admin: Admin) -> None:
    [key] = admin.ok("GET", "/keys")["keys"]
    assert key == {
        "version": 1,
        "createdAt": "2026-11-23T12:30:00Z",
        "retiredAt": None,
        "publicKey": _key_pool()[0][1],
    }
    assert key["publicKey"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert admin.ok("GET", "/keys")["keys"] == [key]


def test_key_pem(admin: Admin) -> None:
    response = admin.call("GET", "/keys/1")
    assert response.status_code == 200
    assert response.headers["content-type"] == PEM
    assert response.text == _key_pool()[0][1]
    assert response.text == admin.ok("GET", "/keys")["keys"][0]["publicKey"]


@pytest.mark.parametrize("version", ["2", "0", "abc", "-1", "1.0", "99999999999", "rotate"])
def test_unknown_key_version_is_404(admin: Admin, version: str) -> None:
    response = admin.call("GET", f"/keys/{version}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": f"no public key version {version}", "field": "version"}


def test_superscript_key_version_is_404(admin: Admin) -> None:
    response = admin.call("GET", "/keys/\u00b2")
    assert response.status_code == 404
    assert response.json() == {"error": "no public key version \u00b2", "field": "version"}


def test_rotate(admin: Admin) -> None:
    admin.ok("GET", "/keys")  # version 1 at 12:30
    admin.ok("PUT", "/clock", {"time": "2026-11-23T13:00:00Z"})
    rotated = admin.ok("POST", "/keys/rotate", status=201)
    assert rotated == {
        "version": 2,
        "createdAt": "2026-11-23T13:00:00Z",
        "retiredAt": None,
        "publicKey": _key_pool()[1][1],
    }
    v1, v2 = admin.ok("GET", "/keys")["keys"]
    assert (v1["version"], v1["createdAt"], v1["retiredAt"]) == (
        1,
        "2026-11-23T12:30:00Z",
        "2026-11-23T13:00:00Z",
    )
    assert v2 == rotated
    assert v1["publicKey"] != v2["publicKey"]
    response = admin.call("GET", "/keys/2")
    assert (response.status_code, response.headers["content-type"]) == (200, PEM)
    assert response.text == v2["publicKey"]
    assert admin.call("GET", "/keys/3").status_code == 404


def test_rotate_on_a_new_ledger_creates_version_1_then_2(admin: Admin) -> None:
    assert admin.ok("POST", "/keys/rotate", status=201)["version"] == 2
    assert [(k["version"], k["retiredAt"]) for k in admin.ok("GET", "/keys")["keys"]] == [
        (1, "2026-11-23T12:30:00Z"),
        (2, None),
    ]
