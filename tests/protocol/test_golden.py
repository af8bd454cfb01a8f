"""Golden wire tests: every ``tests/golden/<Operation>/<case>.json`` against the real ASGI app.

Each case file holds one request (headers and a JSON ``body``, or a ``raw_body`` string, padded
with spaces to ``raw_body_size`` bytes when that is given) and the exact expected response:
status, the headers that matter, and the body. The app runs in process on a fresh SQLite ledger
with ``tests/data/catalog.yaml``, a clock fixed at 2026-11-23T12:30:00Z and sequential ids, so
MeteringRecordIds (from ``...000000000001``) and the request id (``...000000001000``) are
deterministic. A case whose ``xfail`` field is set records the spec's expectation where the
server disagrees; it is run as ``xfail(strict=True)``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketmeter.app import MarketmeterApp
from marketmeter.catalog.loader import load_catalog_file
from marketmeter.config import Settings
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.store.sqlite import SQLiteStore

TESTS = Path(__file__).resolve().parent.parent
GOLDEN = TESTS / "golden"
CATALOG = TESTS / "data" / "catalog.yaml"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
FIRST_REQUEST_ID = "00000000-0000-4000-8000-000000001000"
CASE_KEYS = {"source", "comment", "xfail", "request", "response"}


def _case_params() -> list[Any]:
    params = []
    for path in sorted(GOLDEN.glob("*/*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        marks = []
        if case.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
        params.append(
            pytest.param(path, id=f"{path.parent.name}/{path.stem}", marks=marks),
        )
    return params


CASES = _case_params()


def _request_body(request: dict[str, Any]) -> bytes:
    if "raw_body" in request:
        body = request["raw_body"].encode()
        size = request.get("raw_body_size")
        if size is not None:
            assert size >= len(body)
            body += b" " * (size - len(body))
        return body
    return json.dumps(request["body"]).encode()


def _canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and True from 1 (``==`` does not)."""
    return json.dumps(value, sort_keys=True)


def _send(tmp_path: Path, headers: dict[str, str], body: bytes) -> httpx.Response:
    store = SQLiteStore(tmp_path / "g.db")
    try:
        store.apply_catalog_now(load_catalog_file(CATALOG))
        app = MarketmeterApp(
            Settings(),
            store,
            FixedClock(NOW),
            SequentialIds(),
            SequentialIds(start=1000),
        )

        async def post() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mm") as client:
                return await client.post("/", content=body, headers=headers)

        return asyncio.run(post())
    finally:
        store.close_now()


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 40
    for param in CASES:
        case = json.loads(param.values[0].read_text(encoding="utf-8"))
        assert set(case) <= CASE_KEYS
        assert case["source"]
        assert ("body" in case["request"]) != ("raw_body" in case["request"])


@pytest.mark.parametrize("case_path", CASES)
def test_golden(case_path: Path, tmp_path: Path) -> None:
    case = json.loads(case_path.read_text(encoding="utf-8"))
    request, expected = case["request"], case["response"]

    response = _send(tmp_path, request["headers"], _request_body(request))

    assert response.status_code == expected["status"]
    for name, value in expected["headers"].items():
        assert response.headers.get(name) == value, name
    assert response.headers.get("x-amzn-requestid") == FIRST_REQUEST_ID
    body = response.json()
    assert body == expected["body"]
    assert _canonical(body) == _canonical(expected["body"])
    if response.status_code == 200:
        assert "x-amzn-errortype" not in response.headers
        assert "__type" not in body
    else:
        assert body["__type"] == response.headers["x-amzn-errortype"]
        assert set(body) == {"__type", "message"}
