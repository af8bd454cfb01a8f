"""The test bench's admin routes in process: every 400/404/409 they answer, the LocalStack
aliases, and reset's options (the happy paths through real clients are in tests/e2e)."""

from __future__ import annotations

from typing import Any

import pytest

from marketmeter.store.base import OperatorStore
from tests.admin.test_admin_api import Admin
from tests.raw_sql import raw_write


@pytest.fixture
def admin(store: OperatorStore) -> Admin:
    return Admin(store)


def problem(admin: Admin, method: str, path: str, body: Any = None, status: int = 400) -> Any:
    response = admin.call(method, path, body)
    assert response.status_code == status, response.text
    return response.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "message"),
    [
        ("POST", "/reset", {"dropCatalog": "yes"}, "dropCatalog", "must be true or false"),
        (
            "POST",
            "/reset",
            {"keep": ["ledger"]},
            "keep",
            "must be a list of: clock, faults, journal",
        ),
        ("POST", "/reset", {"wipe": True}, "wipe", "unknown field; known: dropCatalog, keep"),
        ("POST", "/reset", [1], "body", "must be a JSON object"),
        (
            "POST",
            "/snapshots",
            {"name": "a b"},
            "name",
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ),
        ("POST", "/snapshots", {}, "name", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"),
        (
            "POST",
            "/snapshots",
            {"name": "x" * 65},
            "name",
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ),
        (
            "POST",
            "/faults/effects",
            {"latency": -1},
            "latency",
            "must be milliseconds from 0 to 60000",
        ),
        (
            "POST",
            "/faults/effects",
            {"latency": True},
            "latency",
            "must be milliseconds from 0 to 60000",
        ),
        ("PUT", "/faults/quota", {"profile": 3}, "profile", "must be off, aws or custom"),
        (
            "PUT",
            "/faults/quota",
            {"rates": [1]},
            "rates",
            "must map operation names to calls per second",
        ),
        ("DELETE", "/faults/abc", None, "id", "must be a rule id (a whole number)"),
    ],
)
def test_bad_input_names_the_field(
    admin: Admin, method: str, path: str, body: Any, field: str, message: str
) -> None:
    assert problem(admin, method, path, body) == {"error": message, "field": field}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"operation": "Nope"}, "operation"),
        ({"status": "abc"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_journal_filters_are_checked(admin: Admin, query: dict[str, str], field: str) -> None:
    response = admin.call("GET", "/journal", params=query)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_unknown_snapshots_and_rules_are_404(admin: Admin) -> None:
    missing = {"error": "no snapshot named 'nope'", "field": "name"}
    assert problem(admin, "POST", "/snapshots/nope/restore", status=404) == missing
    assert problem(admin, "GET", "/snapshots/nope", status=404) == missing
    assert problem(admin, "DELETE", "/snapshots/nope", status=404) == missing
    assert problem(admin, "DELETE", "/faults/9", status=404) == {
        "error": "no fault rule 9",
        "field": "id",
    }


def test_a_snapshot_of_another_schema_is_409(admin: Admin, store: OperatorStore) -> None:
    admin.ok("POST", "/snapshots", {"name": "old"}, status=201)
    raw_write(store, lambda sql: sql.execute("UPDATE snapshots SET schema_version = 2"))
    body = problem(admin, "POST", "/snapshots/old/restore", status=409)
    assert body["field"] == "name"
    assert "taken under schema version 2" in body["error"]


def test_the_localstack_chaos_routes_are_the_same_rules(admin: Admin) -> None:
    rule = {
        "service": "meteringmarketplace",
        "region": "us-east-1",
        "operation": "MeterUsage",
        "probability": 1,
        "error": {"statusCode": 400, "code": "ThrottlingException"},
    }
    response = admin.call("POST", "/../_localstack/chaos/faults", [rule])
    assert response.status_code == 200
    shown = admin.ok("GET", "/faults")
    assert shown == [{**rule, "id": 1, "matched": 0, "applied": 0}]
    assert admin.ok("GET", "/faults/effects") == {"latency": 0.0}


def test_reset_puts_the_clock_faults_and_journal_back_unless_kept(admin: Admin) -> None:
    admin.ok("PUT", "/clock", {"time": "2030-01-01T00:00:00Z"})
    admin.ok("PATCH", "/faults", {"error": {"code": "ThrottlingException"}})
    admin.ok("POST", "/faults/effects", {"latency": 5})
    kept = admin.ok("POST", "/reset", {"keep": ["clock"]})
    assert kept["kept"] == ["clock"]
    assert kept["clock"]["now"] == "2030-01-01T00:00:00Z"
    assert admin.ok("GET", "/faults") == []
    assert admin.ok("GET", "/faults/effects") == {"latency": 0.0}
    assert admin.ok("POST", "/reset")["clock"]["mode"] == "system"
