"""The BatchMeterUsage lane answers exactly as the general path does: the same bytes, status
and ids for every body, whether the lane takes it or hands it on (protocol/batch_lane.py).

Each body is sent, after the same two setup calls, to two in-process apps on fresh SQLite
ledgers (tests/data/catalog.yaml, a fixed clock, sequential ids): one with the lane, one
without. The responses (status, body, error header) and the journal's verdicts must be equal,
and the lane must have answered the common batches itself.
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
from marketmeter.testbench.journal import JournalQuery

CATALOG = Path(__file__).resolve().parent.parent / "data" / "catalog.yaml"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
T = 1795436000  # within the window of NOW
HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
}


def _record(**members: Any) -> dict[str, Any]:
    return {"Timestamp": T, "CustomerIdentifier": "cust-alice", "Dimension": "users", **members}


def _body(*records: dict[str, Any], product: Any = "prod-legacy") -> str:
    request: dict[str, Any] = {"UsageRecords": list(records)}
    if product is not None:
        request["ProductCode"] = product
    return json.dumps(request)


WHO = ("carol", "dave", "erin", "frank", "grace", "bob")
# The lane answers these itself.
COMMON = [
    _body(_record(Quantity=3)),
    _body(_record(), _record(Quantity=0)),  # Quantity omitted: 0, not echoed
    _body(_record(Quantity=5)),  # a billed key, another quantity: DuplicateRecord
    _body(_record(Quantity=7, CustomerIdentifier="cust-nobody")),  # CustomerNotSubscribed
    _body(*[_record(Quantity=i, Dimension="users", Timestamp=T - 3600 * i) for i in range(5)]),
    # a buyer per kind of agreement: suspended, not started, ended, unsubscribed, none
    _body(*[_record(Quantity=1, CustomerIdentifier=f"cust-{n}") for n in WHO]),
    _body(*[_record(Quantity=1, Timestamp=T - 60 * i) for i in range(25)]),  # a key 25 times
    ' {"ProductCode":"prod-legacy","UsageRecords":[{"Timestamp":' + str(T) + ',"Dimension":'
    '"users","CustomerIdentifier":"cust-bob","Quantity":2}]}\n',
]
# The lane hands these to the general path (before or after the bench's check).
GENERAL = [
    _body(_record(Quantity=1.5)),
    _body(_record(Quantity=-1)),
    _body(_record(Quantity=2147483648)),
    _body(_record(Quantity=99999999999999999999)),
    _body(_record(Timestamp=T + 0.5, Quantity=1)),
    _body(_record(Timestamp=T - 30 * 86400, Quantity=1)),  # out of the window
    _body(_record(Timestamp=True, Quantity=1)),
    _body(_record(Dimension="Users", Quantity=1)),  # dimension names are case-sensitive
    _body(_record(Dimension="", Quantity=1)),
    _body(_record(Dimension="x" * 256, Quantity=1)),
    _body(_record(CustomerIdentifier="", Quantity=1)),
    _body(_record(CustomerIdentifier="cüst", Quantity=1)),
    _body(_record(CustomerIdentifier="cust\u0001alice", Quantity=1)),
    _body(_record(CustomerIdentifier=None, Quantity=1)),
    _body(_record(Quantity=1), product=None),
    _body(_record(Quantity=1), product=""),
    _body(_record(Quantity=1), product="prod-ami"),
    _body(_record(Quantity=1), product="no such product"),
    _body(_record(Quantity=1), product="unknown-product"),
    _body(*[_record(Quantity=1, Timestamp=T - 60 * i) for i in range(26)]),
    _body(),
    _body(_record(Quantity=1, Extra=1)),
    _body(_record(Quantity=1, CustomerAWSAccountId="444455556666")),
    '{"ProductCode":"prod-legacy","UsageRecords":[null]}',
    '{"ProductCode":"prod-legacy","UsageRecords":null}',
    '{"ProductCode":"prod-legacy","UsageRecords":[]} trailing',
    "",
    "[]",
]
SETUP = [_body(_record(Quantity=5)), _body(_record(Quantity=3, Dimension="api_calls"))]


def _exchange(tmp_path: Path, name: str, body: str, lane: bool) -> tuple[Any, ...]:
    store = SQLiteStore(tmp_path / f"{name}.db")
    try:
        store.apply_catalog_now(load_catalog_file(CATALOG))
        app = MarketmeterApp(
            Settings(),
            store,
            FixedClock(NOW),
            SequentialIds(),
            SequentialIds(start=1000),
            lanes=lane,
        )
        handled: list[bool] = []
        if lane:
            lanes = app.endpoint._lanes  # watched, to tell which requests the lane answered
            taken = lanes["BatchMeterUsage"]

            async def watched(*args: Any) -> bytes | None:
                answer = await taken(*args)
                handled.append(answer is not None)
                return answer

            lanes["BatchMeterUsage"] = watched

        async def run() -> tuple[Any, ...]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
                for setup in SETUP:
                    assert (await client.post("/", content=setup, headers=HEADERS)).is_success
                answer = await client.post("/", content=body.encode(), headers=HEADERS)
            verdicts = [e.verdicts for e in app.bench.journal.query(JournalQuery())]
            return (
                answer.status_code,
                answer.content,
                answer.headers.get("x-amzn-errortype"),
                verdicts,
                handled[len(SETUP) :] if lane else None,
            )

        return asyncio.run(run())
    finally:
        store.close_now()


@pytest.mark.parametrize("body", COMMON)
def test_the_lane_answers_common_batches_as_the_general_path(tmp_path: Path, body: str) -> None:
    with_lane = _exchange(tmp_path, "lane", body, lane=True)
    general = _exchange(tmp_path, "general", body, lane=False)
    assert with_lane[:4] == general[:4]
    assert with_lane[4] == [True]
    assert with_lane[0] == 200


@pytest.mark.parametrize("body", GENERAL)
def test_other_bodies_get_the_general_paths_answer(tmp_path: Path, body: str) -> None:
    with_lane = _exchange(tmp_path, "lane", body, lane=True)
    general = _exchange(tmp_path, "general", body, lane=False)
    assert with_lane[:4] == general[:4]
