"""The real ``marketmeter`` command, run as a subprocess: catalog, usage and serve, on a ledger
(SQLite, or PostgreSQL under ``MARKETMETER_TEST_DB=postgresql``: ``ledger_url``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.billing import Billed, bill_sample, check_records, iso
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess, ledger_url, sqlite_only
from tests.ports import free_port

pytestmark = pytest.mark.e2e

DEMO_TEXT = resources.files("marketmeter.catalog").joinpath("demo.yaml").read_text("utf-8")
FRANK_LICENSE = "arn:aws:license-manager::666677778888:license:l-f0000000000000000000000000000001"
SUMMARY = "2 seller(s), 6 product(s), 7 buyer(s), 16 agreement(s)"
NO_MYSQL = (
    "Error: --db mysql://x: database scheme 'mysql' is not supported by this marketmeter "
    "(use a SQLite path, sqlite:///path or postgresql://...)\n"
)


def ok(*args: str, cwd: Path) -> str:
    result = mm(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def show(db: Path) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(
        ok("catalog", "show", "--show-secrets", "--db", ledger_url(db), cwd=db.parent)
    )
    return shown


# --- catalog ------------------------------------------------------------------------------


def test_catalog_show_of_an_empty_database(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    missing = mm("catalog", "show", "--db", str(db), cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        1,
        f"Error: --db {db}: no ledger there: check the path, run the command where "
        "`marketmeter serve` keeps its marketmeter.db, or give --endpoint URL\n",
    )
    assert not db.exists()  # a command that only reads creates nothing
    empty = tmp_path / "empty.yaml"
    empty.write_text("sellers: []\n")
    ok("catalog", "apply", str(empty), "--db", ledger_url(db), cwd=tmp_path)

    assert show(db) == {"version": 1, "sellers": [], "products": [], "buyers": [], "agreements": []}


def test_catalog_apply_prints_summary_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "m.db"

    first = ok("catalog", "apply", str(CATALOG), "--db", ledger_url(db), cwd=tmp_path)
    shown_first = show(db)
    second = ok("catalog", "apply", str(CATALOG), "--db", ledger_url(db), cwd=tmp_path)
    shown_second = show(db)

    minted = "registration token(s) minted (marketmeter token list)"
    assert first == f"applied {CATALOG}: {SUMMARY}; catalog version 1; 5 {minted}\n"
    assert second == f"applied {CATALOG}: {SUMMARY}; catalog version 2; 0 {minted}\n"
    assert shown_first["version"] == 1
    assert shown_second["version"] == 2
    assert {**shown_first, "version": 2} == shown_second
    assert [len(shown_first[k]) for k in ("sellers", "products", "buyers", "agreements")] == [
        2,
        6,
        7,
        16,
    ]
    assert shown_first["sellers"][0] == {
        "account_id": "111122223333",
        "name": "Test Seller",
        "access_keys": [
            {"access_key_id": "AKIATESTSELLER000001", "secret_access_key": "test-seller-secret"}
        ],
    }
    assert {
        "product_code": "prod-ca",
        "seller_account_id": "111122223333",
        "kind": "saas",
        "dimensions": ["requests"],
        "integration": "concurrent-agreements",
        "name": "",
        "registration_url": None,
        "per_request_metering": False,
        "notification_urls": [],
        "notification_targets": [],
        "pricing_model": "usage",
    } in shown_first["products"]
    assert {
        "license_arn": FRANK_LICENSE,
        "buyer_account_id": "666677778888",
        "product_code": "prod-legacy",
        "state": "subscribed",
        "starts_at": 1577836800.0,
        "ends_at": 1609459200.0,
        "free_trial": False,
        "pending_since": None,
        "offer_id": None,
        "entitlements": [],
    } in shown_first["agreements"]


def test_db_from_environment(tmp_path: Path) -> None:
    db = tmp_path / "env.db"

    by_env = mm(
        "catalog", "apply", str(CATALOG), cwd=tmp_path, env={"MARKETMETER_DB": ledger_url(db)}
    )

    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout.endswith(
        "catalog version 1; 5 registration token(s) minted (marketmeter token list)\n"
    )
    assert show(db)["version"] == 1
    assert not (tmp_path / "marketmeter.db").exists()


@sqlite_only("sqlite:/// URLs name SQLite files")
def test_db_as_a_sqlite_url(tmp_path: Path) -> None:
    db = tmp_path / "url.db"

    by_url = mm("catalog", "apply", str(CATALOG), "--db", f"sqlite:///{db}", cwd=tmp_path)

    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout.endswith(
        "catalog version 1; 5 registration token(s) minted (marketmeter token list)\n"
    )
    assert show(db)["version"] == 1  # the file at the plain path
    assert not (tmp_path / "marketmeter.db").exists()


def test_bad_catalog_is_refused_and_nothing_is_applied(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    ok("catalog", "apply", str(CATALOG), "--db", ledger_url(db), cwd=tmp_path)
    before = show(db)
    bad = tmp_path / "bad.yaml"
    # The new buyer is valid: a half-applied file would leave it in the catalog.
    bad.write_text(
        """\
buyers:
  - {account_id: "121212121212", customer_identifier: cust-new}
products:
  - {product_code: prod-legacy, seller: "000011112222", kind: saas, dimensions: [users]}
agreements:
  - {buyer: "121212121212", product: prod-nope}
""",
        encoding="utf-8",
    )

    result = mm("catalog", "apply", str(bad), "--db", ledger_url(db), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {bad}: 2 problem(s), nothing applied:\n"
        "  - products[0] (prod-legacy): seller: no seller with account_id 000011112222\n"
        "  - agreements[0] (121212121212 × prod-nope): product: no product with product_code "
        "prod-nope\n"
    )
    assert show(db) == before


def test_catalog_with_unknown_field_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    bad = tmp_path / "typo.yaml"
    bad.write_text(
        "sellers:\n  - {account_id: '111122223333'}\n"
        "products:\n  - {product_code: p1, seller: '111122223333', kind: saas,\n"
        "      dimensions: [users], dimensons: [seats]}\n",
        encoding="utf-8",
    )

    result = mm("catalog", "apply", str(bad), "--db", ledger_url(db), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {bad}: 1 problem(s), nothing applied:\n"
        "  - products[0] (p1): dimensons: unknown field\n"
    )
    assert not db.exists()  # the failed command created nothing


def test_catalog_apply_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"

    result = mm(
        "catalog", "apply", str(missing), "--db", ledger_url(tmp_path / "m.db"), cwd=tmp_path
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {missing}: 1 problem(s), nothing applied:\n"
        "  - cannot read the file: No such file or directory\n"
    )


def test_catalog_demo_prints_yaml_that_apply_accepts(tmp_path: Path) -> None:
    printed = ok("catalog", "demo", cwd=tmp_path)
    demo = tmp_path / "demo.yaml"
    demo.write_text(printed, encoding="utf-8")

    applied = ok("catalog", "apply", str(demo), "--db", ledger_url(tmp_path / "m.db"), cwd=tmp_path)

    assert printed == DEMO_TEXT
    assert applied == (
        f"applied {demo}: 2 seller(s), 7 product(s), 4 buyer(s), 10 agreement(s); "
        "catalog version 1; 7 registration token(s) minted (marketmeter token list)\n"
    )


def test_commands_refuse_an_unsupported_database(tmp_path: Path) -> None:
    for args in (
        ("catalog", "show"),
        ("catalog", "apply", str(CATALOG)),
        ("usage", "list"),
    ):
        result = mm(*args, "--db", "mysql://x", cwd=tmp_path)
        assert (result.returncode, result.stderr) == (1, NO_MYSQL), args


# --- usage list ---------------------------------------------------------------------------


@pytest.fixture
def billed(server: ServerProcess, client: Any, now: int) -> Billed:
    return bill_sample(client, now)


def usage_json(server: ServerProcess, *filters: str) -> list[dict[str, Any]]:
    out = ok("usage", "list", "--db", server.db_url, "--json", *filters, cwd=server.db.parent)
    records: list[dict[str, Any]] = json.loads(out)["records"]
    return records


def usage_ids(server: ServerProcess, *filters: str) -> list[str]:
    return [record["meteringRecordId"] for record in usage_json(server, *filters)]


def test_usage_list_table(server: ServerProcess, billed: Billed) -> None:
    a, b, c, d = (billed.ids[key] for key in "ABCD")
    h0, h1, h2 = (iso(billed.t0 // 3600 * 3600 + i * 3600) for i in range(3))

    out = ok("usage", "list", "--db", server.db_url, cwd=server.db.parent)

    assert out.splitlines() == [
        "HOUR (UTC)            PRODUCT      CUSTOMER      DIMENSION  QUANTITY  METERING RECORD ID",
        f"{h0}  prod-legacy  cust-alice    users      5         {a}",
        f"{h1}  prod-legacy  cust-bob      api_calls  7         {b}",
        f"{h1}  prod-ca      444455556666  requests   13        {d}",
        f"{h2}  prod-legacy  cust-alice    api_calls  11        {c}",
        "4 record(s)",
        "PRODUCT      DIMENSION  TOTAL QUANTITY",
        "prod-ca      requests   13",
        "prod-legacy  api_calls  18",
        "prod-legacy  users      5",
        "3 dimension(s)",
    ]


def test_usage_list_table_filtered_and_empty(server: ServerProcess, billed: Billed) -> None:
    db = server.db_url

    bob = ok("usage", "list", "--db", db, "--customer", "cust-bob", cwd=server.db.parent)
    nothing = ok("usage", "list", "--db", db, "--product", "prod-nope", cwd=server.db.parent)

    assert bob.splitlines()[-4:] == [
        "1 record(s)",
        "PRODUCT      DIMENSION  TOTAL QUANTITY",
        "prod-legacy  api_calls  7",
        "1 dimension(s)",
    ]
    assert billed.ids["B"] in bob.splitlines()[1]
    assert nothing.splitlines() == [
        "HOUR (UTC)  PRODUCT  CUSTOMER  DIMENSION  QUANTITY  METERING RECORD ID",
        "0 record(s)",
    ]


def test_usage_list_json(server: ServerProcess, billed: Billed) -> None:
    out = ok("usage", "list", "--db", server.db_url, "--json", cwd=server.db.parent)

    check_records(billed, json.loads(out)["records"], "A", "B", "D", "C")
    assert list(json.loads(out)) == ["records"]


def test_usage_list_by_product(server: ServerProcess, billed: Billed) -> None:
    assert usage_ids(server, "--product", "prod-legacy") == billed.keys("A", "B", "C")
    check_records(billed, usage_json(server, "--product", "prod-ca"), "D")
    assert usage_ids(server, "--product", "prod-other") == []


def test_usage_list_by_customer(server: ServerProcess, billed: Billed) -> None:
    assert usage_ids(server, "--customer", "444455556666") == billed.keys("A", "D", "C")
    assert usage_ids(server, "--customer", "cust-alice") == billed.keys(
        "A", "D", "C"
    )  # the buyer, whatever the key
    assert usage_ids(server, "--customer", "777788889999") == billed.keys("B")
    assert usage_ids(server, "--customer", "cust-bob") == billed.keys("B")
    # Carol's record was CustomerNotSubscribed: never billed, never listed.
    assert usage_ids(server, "--customer", "cust-carol") == []


def test_usage_list_by_dimension(server: ServerProcess, billed: Billed) -> None:
    assert usage_ids(server, "--dimension", "api_calls") == billed.keys("B", "C")
    assert usage_ids(server, "--dimension", "API_CALLS") == []


def test_usage_list_by_time(server: ServerProcess, billed: Billed) -> None:
    t0 = billed.t0

    assert usage_ids(server, "--from", str(t0 + 3600)) == billed.keys("B", "D", "C")
    assert usage_ids(server, "--from", iso(t0 + 3600)) == billed.keys("B", "D", "C")
    assert usage_ids(server, "--from", str(t0 + 3600.5)) == billed.keys("D", "C")
    assert usage_ids(server, "--to", str(t0 + 3600)) == billed.keys("A")  # exclusive
    assert usage_ids(server, "--to", iso(t0 + 3661)) == billed.keys("A", "B", "D")
    assert usage_ids(server, "--from", str(t0), "--to", str(t0 + 7200)) == billed.keys(
        "A", "B", "D"
    )
    # An ISO time with an offset, and one without a zone (UTC).
    plus_one = datetime.fromtimestamp(t0 + 3600, timezone(timedelta(hours=1))).isoformat()
    assert plus_one.endswith("+01:00")
    naive = datetime.fromtimestamp(t0 + 3600, UTC).replace(tzinfo=None).isoformat()
    assert usage_ids(server, "--from", plus_one) == billed.keys("B", "D", "C")
    assert usage_ids(server, "--from", naive) == billed.keys("B", "D", "C")


def test_usage_list_limit_and_combined_filters(server: ServerProcess, billed: Billed) -> None:
    assert usage_ids(server, "--limit", "2") == billed.keys("A", "B")
    assert usage_ids(server, "--limit", "1", "--customer", "444455556666") == billed.keys("A")
    combined = usage_ids(
        server,
        "--product",
        "prod-legacy",
        "--customer",
        "444455556666",
        "--dimension",
        "api_calls",
        "--from",
        iso(billed.t0),
    )
    assert combined == billed.keys("C")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--from", "yesterday"),
            "Error: Invalid value for --from: 'yesterday' is neither ISO 8601 nor epoch seconds",
        ),
        (
            ("--to", "2026-13-01"),
            "Error: Invalid value for --to: '2026-13-01' is neither ISO 8601 nor epoch seconds",
        ),
        (
            ("--limit", "0"),
            "Error: Invalid value for --limit: must be a whole number from 1 to 100000",
        ),
        (
            ("--limit", "ten"),
            "Error: Invalid value for --limit: must be a whole number from 1 to 100000",
        ),
    ],
)
def test_usage_list_bad_input_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = mm("usage", "list", "--db", ledger_url(tmp_path / "m.db"), *args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{message} (see 'marketmeter usage list -h')\n"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--from", "nan"),
        ("--from", "inf"),
        ("--from", "-inf"),
        ("--from", "1e999"),
        ("--to", "nan"),
    ],
)
def test_usage_list_non_finite_time_is_a_usage_error(
    tmp_path: Path, option: str, value: str
) -> None:
    result = mm("usage", "list", "--db", ledger_url(tmp_path / "m.db"), option, value, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: Invalid value for {option}: {value!r} "), last


# --- a catalog change reaches a running server ----------------------------------------------


def test_catalog_applied_next_to_a_running_server_takes_effect(
    server: ServerProcess, client: Any, now: int
) -> None:
    record = {
        "Timestamp": datetime.fromtimestamp(now, UTC),
        "CustomerIdentifier": "cust-new",
        "Dimension": "users",
        "Quantity": 4,
    }
    before = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record])
    update = server.db.parent / "update.yaml"
    update.write_text(
        """\
buyers:
  - {account_id: "121212121212", customer_identifier: cust-new, name: New buyer}
agreements:
  - buyer: "121212121212"
    product: prod-legacy
    license_arn: arn:aws:license-manager::121212121212:license:l-12000000000000000000000000000001
    start: 2020-01-01T00:00:00Z
""",
        encoding="utf-8",
    )

    applied = ok("catalog", "apply", str(update), "--db", server.db_url, cwd=server.db.parent)
    after = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record])

    assert [r["Status"] for r in before["Results"]] == ["CustomerNotSubscribed"]
    assert "MeteringRecordId" not in before["Results"][0]
    assert applied == (
        f"applied {update}: 0 seller(s), 0 product(s), 1 buyer(s), 1 agreement(s); "
        "catalog version 2; 1 registration token(s) minted (marketmeter token list)\n"
    )
    assert [r["Status"] for r in after["Results"]] == ["Success"]
    record_id = after["Results"][0]["MeteringRecordId"]
    listed = usage_json(server, "--customer", "121212121212")
    assert [(r["meteringRecordId"], r["customerIdentifier"], r["quantity"]) for r in listed] == [
        (record_id, "cust-new", 4)
    ]


# --- serve ----------------------------------------------------------------------------------


def test_serve_with_a_bad_catalog_exits_with_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "products:\n  - {product_code: p1, seller: '000011112222', kind: desktop,\n"
        "      dimensions: [users]}\n",
        encoding="utf-8",
    )
    db = tmp_path / "m.db"

    result = mm(
        "serve",
        "--port",
        str(free_port()),
        "--db",
        ledger_url(db),
        "--catalog",
        str(bad),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {bad}: 1 problem(s), nothing applied:\n"
        "  - products[0] (p1): kind: Input should be 'saas', 'ami' or 'container'\n"
    )
    assert "AWS Marketplace Metering Service at" not in result.stdout
    assert not db.exists()  # neither the file nor the demo catalog was applied


def test_serve_refuses_an_unsupported_database(tmp_path: Path) -> None:
    result = mm("serve", "--port", str(free_port()), "--db", "mysql://x", cwd=tmp_path)

    assert (result.returncode, result.stderr) == (1, NO_MYSQL)


def test_serve_help_lists_every_option(tmp_path: Path) -> None:
    out = ok("serve", "--help", cwd=tmp_path)

    options = {
        word.rstrip(",")
        for line in out.splitlines()
        for word in line.split()
        if word.startswith("--")
    }
    expected = {"--host", "--port", "--db", "--catalog", "--window", "--future-skew", "--sync"}
    assert expected <= options
    assert "[6h|24h-month-end]" in out
    assert "[full|normal]" in out
