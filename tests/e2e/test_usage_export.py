"""Usage exports of a real server: ``GET /_marketmeter/usage.csv`` and ``usage.jsonl`` (records
and totals per window) and ``marketmeter usage export`` on the server (``--endpoint``) and on
its database (``--db``), compared with the ledger the usage view shows.

The sample of tests/e2e/billing.py is billed once on the module's server; the tests only read.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.billing import Billed, bill_sample, check_records, hour_of, iso
from tests.e2e.cli_runner import mm
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

ALICE = "444455556666"
BOB = "777788889999"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("usage-export") / "ledger.db").start()
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


def test_json_lines_hold_every_record_in_billing_order(http: httpx.Client, billed: Billed) -> None:
    response = http.get("/_marketmeter/usage.jsonl")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jsonl; charset=utf-8"
    assert response.headers["x-marketmeter-export-rows"] == "4"
    assert response.headers["content-disposition"] == 'attachment; filename="usage.jsonl"'
    records = [json.loads(line) for line in response.text.splitlines()]
    check_records(billed, records, "A", "B", "C", "D")


def test_csv_is_the_usage_view_field_for_field(http: httpx.Client, billed: Billed) -> None:
    response = http.get("/_marketmeter/usage.csv", params={"customer": "cust-alice"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["x-marketmeter-export-rows"] == "3"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    view = http.get("/_marketmeter/usage", params={"customer": "cust-alice"}).json()["records"]
    by_id = {record["meteringRecordId"]: record for record in view}
    assert [row["meteringRecordId"] for row in rows] == billed.keys("A", "C", "D")
    for row in rows:
        record = by_id[row["meteringRecordId"]]
        allocations = record["usageAllocations"]
        assert row == {
            "meteringRecordId": record["meteringRecordId"],
            "productCode": record["productCode"],
            "customerAWSAccountId": record["customerAWSAccountId"],
            "customerIdentifier": record["customerIdentifier"] or "",
            "licenseArn": record["licenseArn"] or "",
            "dimension": record["dimension"],
            "quantity": str(record["quantity"]),
            "timestamp": iso(record["timestamp"]),
            "hour": record["hour"],
            "receivedAt": record["receivedAt"],
            "operation": "BatchMeterUsage",
            "instance": "",
            "usageAllocations": json.dumps(allocations, separators=(",", ":"))
            if allocations
            else "",
        }


def test_totals_per_hour_and_customer(http: httpx.Client, billed: Billed) -> None:
    response = http.get(
        "/_marketmeter/usage.csv", params={"window": "hour", "group": "customer,product"}
    )

    assert response.status_code == 200, response.text
    t0 = hour_of(billed.t0)
    assert response.headers["x-marketmeter-export-rows"] == "4"
    assert response.text.splitlines() == [
        "window,productCode,dimension,customerAWSAccountId,quantity,records",
        f"{iso(t0)},prod-legacy,users,{ALICE},5,1",
        f"{iso(t0 + 3600)},prod-ca,requests,{ALICE},13,1",
        f"{iso(t0 + 3600)},prod-legacy,api_calls,{BOB},7,1",
        f"{iso(t0 + 7200)},prod-legacy,api_calls,{ALICE},11,1",
    ]


def test_totals_are_per_dimension_whatever_the_grouping(http: httpx.Client) -> None:
    response = http.get(
        "/_marketmeter/usage.jsonl", params={"window": "month", "product": "prod-legacy"}
    )

    totals = [json.loads(line) for line in response.text.splitlines()]
    assert [(t["dimension"], t["quantity"], t["records"]) for t in totals] in (
        [("api_calls", 18, 2), ("users", 5, 1)],
        # the sample's three hours may straddle a month's end
        [("api_calls", 7, 1), ("users", 5, 1), ("api_calls", 11, 1)],
        [("users", 5, 1), ("api_calls", 18, 2)],
    )
    assert {t["productCode"] for t in totals} == {"prod-legacy"}


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        ("/usage.xml", {}, "format", "must be one of: csv, jsonl"),
        ("/usage.csv", {"window": "week"}, "window", "must be one of: hour, day, month"),
        (
            "/usage.csv",
            {"window": "day", "group": "seller"},
            "group",
            "'seller' is not a key; known: product, customer, dimension",
        ),
        (
            "/usage.jsonl",
            {"limit": "5"},
            "limit",
            "an export has no limit: narrow it with from and to",
        ),
        ("/usage.csv", {"from": "yesterday"}, "from", None),
    ],
)
def test_bad_export_input_is_refused_with_the_field(
    http: httpx.Client, path: str, params: dict[str, str], field: str, message: str | None
) -> None:
    response = http.get(f"/_marketmeter{path}", params=params)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field
    if message is not None:
        assert body["error"] == message


def test_the_command_exports_what_the_server_streams(
    http: httpx.Client, shared: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "usage.jsonl"
    done = mm(
        "usage",
        "export",
        "--endpoint",
        shared.url,
        "--format",
        "jsonl",
        "-o",
        str(out),
        cwd=tmp_path,
        env={"MARKETMETER_PROGRESS": "1"},
    )

    assert done.returncode == 0, done.stderr
    assert out.read_text() == http.get("/_marketmeter/usage.jsonl").text
    assert "exporting" in done.stderr
    assert "4/4" in done.stderr
    assert done.stderr.rstrip().endswith(f"4 record(s) exported to {out}")


def test_the_command_exports_totals_from_the_database(
    http: httpx.Client, shared: ServerProcess, tmp_path: Path
) -> None:
    done = mm(
        "usage",
        "export",
        "--db",
        shared.db_url,
        "--window",
        "day",
        "--group",
        "customer",
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no bar unless stderr is a terminal
    expected = http.get("/_marketmeter/usage.csv", params={"window": "day", "group": "customer"})
    assert done.stdout == expected.text


def test_the_command_refuses_what_the_server_would(tmp_path: Path, shared: ServerProcess) -> None:
    done = mm("usage", "export", "--db", shared.db_url, "--from", "yesterday", cwd=tmp_path)

    assert done.returncode == 2
    assert "Invalid value for '--from': 'yesterday' is neither ISO 8601 nor epoch seconds" in (
        done.stderr
    )
    grouped = mm("usage", "export", "--db", shared.db_url, "--group", "customer", cwd=tmp_path)
    assert grouped.returncode == 2
    assert "Invalid value for '--group': needs --window" in grouped.stderr


def test_db_copy_draws_its_progress(tmp_path: Path) -> None:
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    applied = mm("catalog", "apply", str(CATALOG), "--db", str(source), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr  # 5 registration tokens, a signing key

    copied = mm(
        "db",
        "copy",
        "--from",
        str(source),
        "--to",
        str(target),
        cwd=tmp_path,
        env={"MARKETMETER_PROGRESS": "1"},
    )

    assert copied.returncode == 0, copied.stderr
    assert "copying" in copied.stderr
    assert re.search(r"(\d+)/\1", copied.stderr) is not None  # the bar ends full
    assert "5 registration_tokens" in copied.stdout
