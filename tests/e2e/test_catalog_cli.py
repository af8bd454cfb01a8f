"""The catalog commands, run as a user runs them (``python -m marketmeter sellers|products|buyers
...``) against a real ``marketmeter serve`` with an admin token and tests/data/catalog.yaml:
exact tables, ``--json``, the secret printed once by ``add-key``, the admin API's refusals as
the CLI's errors, and the token from ``--admin-token`` or ``MARKETMETER_ADMIN_TOKEN``."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

TOKEN = "catalog-cli-admin-token"
Run = subprocess.CompletedProcess[str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "ledger.db", CATALOG, "--admin-token", TOKEN).start()
    try:
        yield process
    finally:
        process.stop()


def run(server: ServerProcess, *args: str, token: str | None = TOKEN) -> Run:
    env = {"MARKETMETER_ENDPOINT": server.url, "MARKETMETER_ADMIN_TOKEN": token or ""}
    return mm(*args, cwd=server.db.parent, env=env)


def ok(server: ServerProcess, *args: str) -> str:
    done = run(server, *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def fails(server: ServerProcess, *args: str, token: str | None = TOKEN) -> str:
    done = run(server, *args, token=token)
    assert done.returncode == 1, done.stdout
    return done.stderr


def test_sellers_list_show_and_json(server: ServerProcess) -> None:
    assert ok(server, "sellers", "list") == (
        "ACCOUNT ID    NAME          ACCESS KEYS\n"
        "111122223333  Test Seller   AKIATESTSELLER000001\n"
        "999988887777  Other Seller  -\n"
        "2 seller(s)\n"
    )
    assert json.loads(ok(server, "sellers", "list", "--json")) == [
        {
            "account_id": "111122223333",
            "name": "Test Seller",
            "access_keys": [{"access_key_id": "AKIATESTSELLER000001"}],
        },
        {"account_id": "999988887777", "name": "Other Seller", "access_keys": []},
    ]
    assert ok(server, "sellers", "show", "111122223333") == (
        "account_id   111122223333\nname         Test Seller\naccess_keys  AKIATESTSELLER000001\n"
    )


def test_seller_lifecycle_and_keys(server: ServerProcess) -> None:
    assert ok(server, "sellers", "add", "123412341234", "--name", "New Seller") == (
        "account_id   123412341234\nname         New Seller\naccess_keys  -\n"
    )
    given = ok(
        server,
        "sellers",
        "add-key",
        "123412341234",
        "--access-key-id",
        "AKIANEWSELLER0000001",
        "--secret-access-key",
        "new-secret",
    )
    assert given == (
        "access_key_id      AKIANEWSELLER0000001\n"
        "secret_access_key  new-secret\n"
        "(the secret is shown this once)\n"
    )
    generated = json.loads(ok(server, "sellers", "add-key", "123412341234", "--json"))
    assert sorted(generated) == ["access_key_id", "secret_access_key"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", generated["access_key_id"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", generated["secret_access_key"])
    shown = ok(server, "sellers", "show", "123412341234")
    assert shown.endswith(
        "access_keys  "
        + ", ".join(sorted(["AKIANEWSELLER0000001", generated["access_key_id"]]))
        + "\n"
    )
    assert "new-secret" not in shown
    assert ok(server, "sellers", "remove-key", "123412341234", "AKIANEWSELLER0000001") == (
        "removed access key AKIANEWSELLER0000001 of seller 123412341234\n"
    )
    assert ok(server, "sellers", "remove", "123412341234") == "removed seller 123412341234\n"
    assert fails(server, "sellers", "show", "123412341234") == (
        "Error: accountId: no seller with account_id 123412341234\n"
    )


def test_products(server: ServerProcess) -> None:
    listed = ok(server, "products", "list")
    assert listed.splitlines()[:2] == [
        "PRODUCT CODE    SELLER        KIND       INTEGRATION            DIMENSIONS",
        "prod-agent      111122223333  ami        legacy                 invocations",
    ]
    assert listed.endswith(
        "prod-other      999988887777  saas       legacy                 users\n6 product(s)\n"
    )
    added = ok(
        server,
        "products",
        "add",
        "prod-new",
        "--seller",
        "999988887777",
        "--kind",
        "saas",
        "--dimension",
        "users",
        "--dimension",
        "gb",
        "--json",
    )
    assert json.loads(added)["dimensions"] == ["users", "gb"]
    updated = ok(server, "products", "update", "prod-new", "--dimension", "requests", "--name", "N")
    assert "dimensions            requests\n" in updated
    assert "name                  N\n" in updated
    assert "seller                999988887777\n" in updated
    assert ok(server, "products", "remove", "prod-new") == "removed product prod-new\n"
    assert fails(server, "products", "remove", "prod-other") == (
        "Error: productCode: product prod-other has agreements: "
        "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009\n"
    )
    assert (
        fails(
            server,
            "products",
            "add",
            "prod-x",
            "--seller",
            "123412341234",
            "--kind",
            "saas",
            "--dimension",
            "u",
        )
        == "Error: seller: no seller with account_id 123412341234\n"
    )


def test_buyers(server: ServerProcess) -> None:
    assert ok(server, "buyers", "list") == (
        "ACCOUNT ID    CUSTOMER IDENTIFIER  NAME                                             "
        "ACCESS KEYS\n"
        "222233334444  cust-carol           suspended                                        "
        "AKIATESTCAROL0000001\n"
        "333344445555  cust-erin            starts in 2099                                   -\n"
        "444455556666  cust-alice           subscribed to everything of seller 111122223333  "
        "AKIATESTALICE0000001\n"
        "555566667777  cust-dave            no agreement                                     "
        "AKIATESTDAVE00000001\n"
        "666677778888  cust-frank           ended in 2021                                    -\n"
        "777788889999  cust-bob             subscribed to legacy                             -\n"
        "888899990000  cust-grace           unsubscribed                                     -\n"
        "7 buyer(s)\n"
    )
    assert ok(server, "buyers", "add", "121212121212", "--customer-identifier", "cust-new") == (
        "account_id           121212121212\n"
        "customer_identifier  cust-new\n"
        "name                 -\n"
        "access_keys          -\n"
    )
    assert ok(server, "buyers", "remove", "121212121212") == "removed buyer 121212121212\n"
    assert fails(server, "buyers", "remove", "888899990000") == (
        "Error: accountId: buyer 888899990000 has agreements: "
        "arn:aws:license-manager::888899990000:license:l-90000000000000000000000000000001\n"
    )


def test_the_admin_token(server: ServerProcess) -> None:
    assert fails(server, "sellers", "list", token=None) == (
        f"Error: the server at {server.url} requires its admin token: set "
        "MARKETMETER_ADMIN_TOKEN or give --admin-token-file FILE\n"
    )
    assert fails(server, "sellers", "list", token="wrong") == (
        f"Error: the server at {server.url} refused the admin token given: give the one it was "
        "started with\n"
    )
    done = run(server, "sellers", "--admin-token", TOKEN, "list", token=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("2 seller(s)\n")
    # the bench and lifecycle commands send it too
    assert fails(server, "journal", token=None).startswith("Error: the server at ")
    assert run(server, "journal").returncode == 0
    for command in (("agreements", "list"), ("events",)):
        assert fails(server, *command, token=None).startswith("Error: the server at ")
        assert run(server, *command).returncode == 0
    given = run(server, "agreements", "--admin-token", TOKEN, "list", "--json", token=None)
    assert given.returncode == 0, given.stderr
    assert len(json.loads(given.stdout)["agreements"]) > 0
