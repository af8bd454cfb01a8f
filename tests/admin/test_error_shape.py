"""The admin API's one error shape, pinned: every refusal of every route module, the guards'
and the router's, is ``{"error": <message>, "field": <name or null>}`` (``field`` left out only
where no input is at fault: an unknown path or method) with a 4xx status, as ``AdminError`` in
the OpenAPI document says."""

from __future__ import annotations

from typing import Any

import pytest

from marketmeter.admin.openapi import AdminError
from marketmeter.store.base import OperatorStore
from tests.admin.test_admin_api import Admin

CASES: list[tuple[str, str, Any, bytes | None, int, str | None]] = [
    # method, path, JSON body, raw body, status, field
    ("PUT", "/clock", {"time": "soon"}, None, 400, "time"),  # the clock
    ("POST", "/tokens", {"productCode": "nope", "buyerAccountId": "1"}, None, 400, "productCode"),
    ("GET", "/keys/99", None, None, 404, "version"),  # signing keys
    ("GET", "/usage", None, None, 400, "limit"),  # usage (limit=0 below)
    ("POST", "/sellers", {"account_id": "12"}, None, 400, "account_id"),  # the catalog
    ("DELETE", "/products/prod-legacy", None, None, 409, "productCode"),
    ("GET", "/buyers/999999999999", None, None, 404, "accountId"),
    ("POST", "/catalog", {"document": 7}, None, 400, "document"),
    ("POST", "/agreements/agmt-nope/suspend", None, None, 404, "agreement"),  # the lifecycle
    ("GET", "/events", None, None, 400, "action"),
    ("PATCH", "/faults", {"operation": "Nope"}, None, 400, "operation"),  # the test bench
    ("DELETE", "/faults/7", None, None, 404, "id"),
    ("POST", "/snapshots", {"name": "a b"}, None, 400, "name"),
    ("POST", "/reset", {"keep": ["ledger"]}, None, 400, "keep"),
    ("PUT", "/clock", None, b"{not json", 400, "body"),  # the body reader
    ("PUT", "/clock", {"time": "\u0000"}, None, 400, "body"),  # the NUL guard
    ("GET", "/nope", None, None, 404, None),  # the router
    ("PATCH", "/clock", None, None, 405, None),
]
PARAMS = {"/usage": {"limit": "0"}, "/events": {"action": "nope"}}


@pytest.mark.parametrize(
    ("method", "path", "body", "content", "status", "field"),
    CASES,
    ids=[f"{c[0]} {c[1]}" for c in CASES],
)
def test_every_refusal_has_the_one_shape(
    store: OperatorStore,
    method: str,
    path: str,
    body: Any,
    content: bytes | None,
    status: int,
    field: str | None,
) -> None:
    response = Admin(store).call(method, path, body, content, params=PARAMS.get(path))
    assert (response.status_code, response.headers["content-type"]) == (
        status,
        "application/json",
    ), response.text
    problem = response.json()
    assert AdminError.model_validate(problem).model_dump(exclude_unset=True) == problem
    assert isinstance(problem["error"], str)
    assert problem["error"]
    assert problem.get("field") == field
    assert set(problem) == ({"error", "field"} if field is not None else {"error"})
