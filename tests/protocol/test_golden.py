"""Golden wire tests: every ``tests/golden/<Operation>/<case>.json`` against the real ASGI app.

Each case is a JSON object with these keys (no others):

- ``source`` (required): the docs page or AWS document the expectation follows;
  ``comment`` (optional): why the expected values are what they are.
- ``request``: ``headers`` and either a JSON ``body`` or a ``raw_body`` string (padded with
  spaces to ``raw_body_size`` bytes when that is given), sent as ``POST /``. The headers may
  carry credentials: a SigV4 ``Authorization`` header (open auth verifies nothing but reads the
  access key id of ``Credential=<key>/...``: the buyer of MeterUsage and RegisterUsage) and
  ``X-Amz-Security-Token`` (the instance, task or pod).
- ``response``: the exact expected ``status``, the ``headers`` that matter and the ``body``.
  Error bodies are ``{"__type", "message"}`` (the Agreement API's with its error shapes'
  other members: ``reason``, ``resourceId``, ``resourceType``) with ``__type`` equal to the
  ``x-amzn-ErrorType`` header; success bodies have neither.
- ``setup`` (optional): state prepared before the request, on the same app and ledger:
  ``tokens``, registration tokens stored with the catalog, each
  ``{"token", "product", "buyer", "license_arn", "issued_at", "offer_type"}``
  (``issued_at`` in epoch seconds); then ``requests``, sent in order, each ``{"headers",
  "body" | "raw_body"}`` plus optional ``path`` (default ``/``, the AWS endpoint; an admin path
  such as ``/_marketmeter/keys/rotate``) and ``method`` (default ``POST``). Their responses are
  ignored except that each must have a status below 500.
- ``jwt`` (optional, with a placeholder): a string ``"<jwt>"`` anywhere in the expected body
  stands for a RegisterUsage signature, whose PSS salt makes it differ on every call. The actual
  value must be a JWT that verifies (PS256, PyJWT) with the public key of the version its
  ``claims.publicKeyVersion`` names, fetched from the same app (``GET
  /_marketmeter/keys/{version}``) after the request; its header and claims must equal
  ``jwt.header`` and ``jwt.claims`` exactly.
- ``catalog`` (optional): the catalog file in ``tests/data`` the app meters against (default
  ``catalog.yaml``; ``catalog_issuer_arns.yaml`` holds LicenseArns in AWS's form).
- ``settings`` (optional): ``Settings`` fields of the app other than the defaults, by name, with
  their string values (``{"dry_run_answer": "error"}``).
- ``xfail`` (optional): the reason the server disagrees with the spec's expectation recorded
  here; the case runs as ``xfail(strict=True)``.

Every case runs on each store backend (ids ``<Operation>/<case>[sqlite]`` and
``<Operation>/<case>[postgresql]``): the wire contract does not depend on the ledger's database.
The app runs in process on a fresh ledger with ``tests/data/catalog.yaml`` (no tokens
but those of ``setup``), a clock fixed at 2026-11-23T12:30:00Z (epoch 1795437000), sequential
MeteringRecordIds (from ``...000000000001``), sequential registration tokens and request ids
from ``...000000001000``: the case's own request gets ``1000 + n``, where ``n`` is the number of
setup requests sent to the AWS endpoint (admin requests draw no request id). RSA key pairs come
from two pairs generated once per module and handed out in order, so key version 1 and the
version a rotation creates are distinct keys.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from marketmeter.app import ADMIN_PREFIX, MarketmeterApp
from marketmeter.catalog.loader import load_catalog_file
from marketmeter.config import DryRunAnswer, Settings
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.metering.signing_keys import new_rsa_key_pair
from marketmeter.metering.types import RegistrationToken
from marketmeter.store.open import open_store
from tests.conftest import BACKENDS

TESTS = Path(__file__).resolve().parent.parent
GOLDEN = TESTS / "golden"
CATALOG = TESTS / "data" / "catalog.yaml"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
FIRST_REQUEST_NUMBER = 1000
CASE_KEYS = {
    "source",
    "comment",
    "xfail",
    "catalog",
    "settings",
    "setup",
    "jwt",
    "request",
    "response",
}
SETTINGS: dict[str, Callable[[str], Any]] = {"dry_run_answer": DryRunAnswer}
SETUP_KEYS = {"tokens", "requests"}
TOKEN_KEYS = {"token", "product", "buyer", "license_arn", "issued_at", "offer_type"}
REQUEST_KEYS = {"headers", "body", "raw_body", "raw_body_size", "path", "method"}
JWT_PLACEHOLDER = "<jwt>"
KEY_PAIRS = 2

MINIMUMS = {
    "BatchMeterUsage": 55,
    "MeterUsage": 55,
    "ResolveCustomer": 14,
    "RegisterUsage": 18,
    "GetEntitlements": 15,
}
# the members of the Agreement API's error shapes beyond __type and message
AGREEMENT_ERROR_MEMBERS = {"requestId", "reason", "resourceId", "resourceType"}
# the Agreement API (docs/agreement-api.md): over tests/data/catalog_offers.yaml
MINIMUMS |= {
    "DescribeAgreement": 6,
    "GetAgreementTerms": 6,
    "SearchAgreements": 9,
    "GetAgreementEntitlements": 4,
    "GetAgreementContacts": 2,
}


def _case_paths() -> list[Path]:
    return sorted(GOLDEN.glob("*/*.json"))


def _case_params() -> list[Any]:
    """Every case on every backend: ``(case_path, store_url)``, ``store_url`` indirect."""
    params = []
    for path in _case_paths():
        case = json.loads(path.read_text(encoding="utf-8"))
        marks = []
        if case.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
        for backend in BACKENDS:
            params.append(
                pytest.param(
                    path,
                    backend,
                    id=f"{path.parent.name}/{path.stem}[{backend}]",
                    marks=marks,
                )
            )
    return params


CASES = _case_params()


@functools.cache
def _key_pairs() -> tuple[tuple[str, str], ...]:
    """RSA key pairs generated once per module: generating 2048-bit keys is slow."""
    return tuple(new_rsa_key_pair() for _ in range(KEY_PAIRS))


def _key_pair_factory() -> Callable[[], tuple[str, str]]:
    """A factory for one app: hands out the pre-generated pairs in order, each once."""
    pairs: Iterator[tuple[str, str]] = iter(_key_pairs())

    def next_pair() -> tuple[str, str]:
        pair = next(pairs, None)
        assert pair is not None, f"a golden case needs more than {KEY_PAIRS} key pairs"
        return pair

    return next_pair


def _request_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def _request_body(request: dict[str, Any]) -> bytes:
    if "raw_body" in request:
        body: bytes = request["raw_body"].encode()
        size = request.get("raw_body_size")
        if size is not None:
            assert size >= len(body)
            body += b" " * (size - len(body))
        return body
    if "body" not in request:
        return b""
    return json.dumps(request["body"]).encode()


def _canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and True from 1 (``==`` does not)."""
    return json.dumps(value, sort_keys=True)


def _setup_tokens(setup: dict[str, Any]) -> list[RegistrationToken]:
    return [
        RegistrationToken(
            value=token["token"],
            product_code=token["product"],
            buyer_account_id=token["buyer"],
            license_arn=token["license_arn"],
            issued_at=token["issued_at"],
            offer_type=token["offer_type"],
        )
        for token in setup.get("tokens", [])
    ]


def _is_aws_endpoint(request: dict[str, Any]) -> bool:
    return not request.get("path", "/").startswith(ADMIN_PREFIX)


def _jwt_placeholders(value: Any) -> int:
    if value == JWT_PLACEHOLDER:
        return 1
    if isinstance(value, dict):
        return sum(_jwt_placeholders(item) for item in value.values())
    if isinstance(value, list):
        return sum(_jwt_placeholders(item) for item in value)
    return 0


@dataclass(frozen=True, slots=True)
class Exchange:
    response: httpx.Response
    setup_statuses: list[int]
    public_key: str | None  # PEM of the version the case's ``jwt.claims`` names


def _exchange(store_url: str, case: dict[str, Any]) -> Exchange:
    setup = case.get("setup", {})
    store = open_store(store_url)
    try:
        catalog = TESTS / "data" / case.get("catalog", CATALOG.name)
        store.apply_catalog_now(load_catalog_file(catalog), _setup_tokens(setup))
        settings = {name: SETTINGS[name](value) for name, value in case.get("settings", {}).items()}
        app = MarketmeterApp(
            Settings(**settings),
            store,
            FixedClock(NOW),
            SequentialIds(),
            SequentialIds(start=FIRST_REQUEST_NUMBER),
            tokens=SequentialTokens(),
            key_pairs=_key_pair_factory(),
        )

        async def run() -> Exchange:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8686"
            ) as client:
                statuses = []
                for request in setup.get("requests", []):
                    answer = await client.request(
                        request.get("method", "POST"),
                        request.get("path", "/"),
                        content=_request_body(request),
                        headers=request["headers"],
                    )
                    statuses.append(answer.status_code)
                request = case["request"]
                response = await client.post(
                    "/", content=_request_body(request), headers=request["headers"]
                )
                public_key = None
                if "jwt" in case:
                    version = case["jwt"]["claims"]["publicKeyVersion"]
                    pem = await client.get(f"{ADMIN_PREFIX}/keys/{version}")
                    assert pem.status_code == 200, pem.text
                    public_key = pem.text
                return Exchange(response, statuses, public_key)

        return asyncio.run(run())
    finally:
        store.close_now()


def _check_jwt(token: Any, expected: dict[str, Any], public_key: str | None) -> None:
    assert isinstance(token, str)
    assert public_key is not None
    header = jwt.get_unverified_header(token)
    # iat is the service clock's (2026), not wall time: only the signature is verified here.
    claims = jwt.decode(token, public_key, algorithms=["PS256"], options={"verify_iat": False})
    assert header == expected["header"]
    assert claims == expected["claims"]
    assert _canonical(header) == _canonical(expected["header"])
    assert _canonical(claims) == _canonical(expected["claims"])


def _resolve_placeholders(expected: Any, actual: Any, check: Callable[[Any], None]) -> Any:
    """``expected`` with every ``"<jwt>"`` replaced by the actual value, once ``check``ed."""
    if expected == JWT_PLACEHOLDER:
        check(actual)
        return actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {
            key: _resolve_placeholders(value, actual.get(key), check)
            for key, value in expected.items()
        }
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_resolve_placeholders(e, a, check) for e, a in zip(expected, actual, strict=True)]
    return expected


def test_golden_cases_exist() -> None:
    counts: dict[str, int] = {}
    for path in _case_paths():
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
        case = json.loads(path.read_text(encoding="utf-8"))
        assert set(case) <= CASE_KEYS, path
        assert case["source"], path
        requests = [case["request"], *case.get("setup", {}).get("requests", [])]
        for request in requests:
            assert set(request) <= REQUEST_KEYS, path
            bodies = ("body" in request) + ("raw_body" in request)
            assert bodies == 1 if _is_aws_endpoint(request) else bodies <= 1, path
        assert {"path", "method"}.isdisjoint(case["request"]), path
        setup = case.get("setup", {})
        assert set(setup) <= SETUP_KEYS, path
        for token in setup.get("tokens", []):
            assert set(token) == TOKEN_KEYS, path
        assert set(case.get("settings", {})) <= set(SETTINGS), path
        assert (TESTS / "data" / case.get("catalog", CATALOG.name)).is_file(), path
        placeholders = _jwt_placeholders(case["response"]["body"])
        assert (placeholders > 0) == ("jwt" in case), path
        if "jwt" in case:
            assert set(case["jwt"]) == {"header", "claims"}, path
    assert set(counts) == set(MINIMUMS)
    for operation, minimum in MINIMUMS.items():
        assert counts[operation] >= minimum, operation


@pytest.mark.parametrize(("case_path", "store_url"), CASES, indirect=["store_url"])
def test_golden(case_path: Path, store_url: str) -> None:
    case = json.loads(case_path.read_text(encoding="utf-8"))
    expected = case["response"]
    setup_requests = case.get("setup", {}).get("requests", [])

    exchange = _exchange(store_url, case)

    assert all(status < 500 for status in exchange.setup_statuses), exchange.setup_statuses
    response = exchange.response
    assert response.status_code == expected["status"]
    for name, value in expected["headers"].items():
        assert response.headers.get(name) == value, name
    aws_setup_requests = sum(1 for request in setup_requests if _is_aws_endpoint(request))
    assert response.headers.get("x-amzn-requestid") == _request_id(
        FIRST_REQUEST_NUMBER + aws_setup_requests
    )
    body = response.json()
    wanted = _resolve_placeholders(
        expected["body"], body, lambda token: _check_jwt(token, case["jwt"], exchange.public_key)
    )
    assert body == wanted
    assert _canonical(body) == _canonical(wanted)
    if response.status_code == 200:
        assert "x-amzn-errortype" not in response.headers
        assert "__type" not in body
    else:
        assert body["__type"] == response.headers["x-amzn-errortype"]
        target = case["request"]["headers"].get("X-Amz-Target", "")
        extra = AGREEMENT_ERROR_MEMBERS if target.startswith("AWSMPCommerceService") else set()
        assert set(body) - {"__type", "message"} <= extra
