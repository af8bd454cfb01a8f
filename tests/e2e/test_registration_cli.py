"""The real ``marketmeter token`` and ``marketmeter keys`` commands, run as subprocesses on a
ledger (SQLite, or PostgreSQL under ``MARKETMETER_TEST_DB=postgresql``): minting and listing
registration tokens, showing, listing and rotating the RegisterUsage signing keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ledger_url

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"[A-Za-z0-9_-]{64}")
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"


def ok(db: Path, *args: str) -> str:
    result = mm(*args, "--db", ledger_url(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def usage_error(db: Path, *args: str) -> str:
    """The one stderr line of a command that must exit 2 and print nothing on stdout, without
    its pointer to the command's help (checked here)."""
    result = mm(*args, "--db", ledger_url(db), cwd=db.parent)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    line, hint = result.stderr.removesuffix("\n").rsplit(" (see ", 1)
    assert hint == f"'marketmeter {' '.join(args[:2])} -h')", hint
    return line


def listed(db: Path, *filters: str) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = json.loads(ok(db, "token", "list", "--json", *filters))["tokens"]
    return shown


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A ledger with tests/data/catalog.yaml applied (8 registration tokens minted)."""
    path = tmp_path / "m.db"
    ok(path, "catalog", "apply", str(CATALOG))
    return path


@pytest.fixture(scope="module")
def unchanged_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with tests/data/catalog.yaml, shared by the tests that must change nothing."""
    path = tmp_path_factory.mktemp("registration-cli") / "m.db"
    ok(path, "catalog", "apply", str(CATALOG))
    return path


# --- token mint ----------------------------------------------------------------------------


def test_token_mint_prints_only_the_token(db: Path) -> None:
    out = ok(db, "token", "mint", "--product", "prod-legacy", "--buyer", "444455556666")
    explicit = ok(
        db,
        "token",
        "mint",
        "--product",
        "prod-ca",
        "--buyer",
        "444455556666",
        "--license-arn",
        ALICE_CA,
        "--free-trial",
    )

    token = out.removesuffix("\n")
    assert out == token + "\n"
    assert TOKEN.fullmatch(token)
    assert TOKEN.fullmatch(explicit.strip())
    assert token != explicit.strip()
    legacy = listed(db, "--buyer", "444455556666", "--product", "prod-legacy")
    assert len(legacy) == 2
    assert legacy[0]["token"] == token  # newest first, after the catalog's
    assert {k: legacy[0][k] for k in ("productCode", "customerAWSAccountId", "licenseArn")} == {
        "productCode": "prod-legacy",
        "customerAWSAccountId": "444455556666",
        "licenseArn": ALICE_LEGACY,
    }
    assert (legacy[0]["offerType"], legacy[0]["expired"]) == (None, False)
    [trial, _] = listed(db, "--buyer", "444455556666", "--product", "prod-ca")
    assert (trial["token"], trial["licenseArn"], trial["offerType"]) == (
        explicit.strip(),
        ALICE_CA,
        "free-trial",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--product", "nope", "--buyer", "444455556666"),
            "Error: Invalid value for --product: no product with product code 'nope'",
        ),
        (
            ("--product", "prod-legacy", "--buyer", "555566667777"),
            "Error: Invalid value for --buyer: buyer 555566667777 has no active agreement for "
            "prod-legacy; subscribe first: marketmeter subscribe --product prod-legacy "
            "--buyer 555566667777",
        ),
        (
            ("--product", "prod-legacy", "--buyer", "999999999999"),
            "Error: Invalid value for --buyer: no buyer with account id '999999999999'",
        ),
        (
            ("--product", "prod-ca", "--buyer", "444455556666", "--license-arn", BOB_CA),
            f"Error: Invalid value for --license-arn: {BOB_CA} is not an agreement of buyer "
            "444455556666 for prod-ca",
        ),
    ],
)
def test_token_mint_errors_name_the_option(
    unchanged_db: Path, args: tuple[str, ...], message: str
) -> None:
    assert usage_error(unchanged_db, "token", "mint", *args) == message


def test_token_mint_refuses_a_non_saas_product(unchanged_db: Path) -> None:
    last = usage_error(
        unchanged_db, "token", "mint", "--product", "prod-ami", "--buyer", "444455556666"
    )

    assert last == (
        "Error: Invalid value for --product: prod-ami is not a SaaS product (kind: ami); "
        "registration tokens are for SaaS products"
    )
    assert len(listed(unchanged_db)) == 5  # none of the refused mints left a token


# --- token list ----------------------------------------------------------------------------


def test_token_list_table_and_json(db: Path) -> None:
    minted = ok(
        db, "token", "mint", "--product", "prod-ca", "--buyer", "777788889999", "--free-trial"
    ).strip()

    table = ok(db, "token", "list", "--buyer", "777788889999")
    as_json = json.loads(ok(db, "token", "list", "--buyer", "777788889999", "--json"))

    assert list(as_json) == ["tokens"]
    tokens = as_json["tokens"]
    assert [(t["productCode"], t["licenseArn"], t["offerType"]) for t in tokens] == [
        ("prod-ca", BOB_CA, "free-trial"),
        ("prod-ca", BOB_CA, None),
        (
            "prod-legacy",
            "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001",
            None,
        ),
    ]
    assert tokens[0]["token"] == minted
    assert all(
        set(t)
        == {
            "token",
            "productCode",
            "customerAWSAccountId",
            "licenseArn",
            "offerType",
            "issuedAt",
            "expiresAt",
            "expired",
        }
        and t["customerAWSAccountId"] == "777788889999"
        and t["expired"] is False
        for t in tokens
    )
    width = max(len("EXPIRES (UTC)"), *(len(t["expiresAt"]) for t in tokens))
    offers = ["free-trial", "-", "-"]
    assert table.splitlines() == [
        f"{'TOKEN':64}  {'PRODUCT':11}  BUYER         {'OFFER':10}  "
        f"{'EXPIRES (UTC)':{width}}  STATE",
        *(
            f"{t['token']}  {t['productCode']:11}  777788889999  {offer:10}  "
            f"{t['expiresAt']:{width}}  valid"
            for t, offer in zip(tokens, offers, strict=True)
        ),
        "3 token(s)",
    ]
    assert [t["token"] for t in listed(db, "--buyer", "777788889999", "--limit", "1")] == [minted]
    assert [t["token"] for t in listed(db, "--product", "prod-ca", "--buyer", "777788889999")] == [
        minted,
        tokens[1]["token"],
    ]
    assert ok(db, "token", "list", "--buyer", "121212121212").splitlines() == [
        "TOKEN  PRODUCT  BUYER  OFFER  EXPIRES (UTC)  STATE",
        "0 token(s)",
    ]


# --- keys ----------------------------------------------------------------------------------


def test_keys_show_list_rotate(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"

    first = ok(db, "keys", "show")  # version 1 is created on first use
    again = ok(db, "keys", "show", "--version", "1")
    listing = json.loads(ok(db, "keys", "list", "--json"))

    assert first == again
    assert first.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert first.endswith("-----END PUBLIC KEY-----\n")
    loaded = serialization.load_pem_public_key(first.encode())
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.key_size == 2048
    [v1] = listing["keys"]
    assert v1 == {"version": 1, "createdAt": v1["createdAt"], "retiredAt": None, "publicKey": first}
    assert ok(db, "keys", "list").splitlines() == [
        "VERSION  CREATED (UTC)                RETIRED (UTC)",
        f"1        {v1['createdAt']}  - (current)",
        "1 key version(s)",
    ]

    assert ok(db, "keys", "rotate") == "version 2 created; older versions retired\n"

    second = ok(db, "keys", "show", "--version", "2")
    rotated = json.loads(ok(db, "keys", "list", "--json"))["keys"]
    assert second != first
    assert second.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert ok(db, "keys", "show") == first  # version 1 is kept
    retired_at = rotated[1]["createdAt"]
    assert rotated == [
        {**v1, "retiredAt": retired_at},
        {"version": 2, "createdAt": retired_at, "retiredAt": None, "publicKey": second},
    ]
    assert ok(db, "keys", "list").splitlines() == [
        "VERSION  CREATED (UTC)                RETIRED (UTC)",
        f"1        {v1['createdAt']}  {retired_at}",
        f"2        {retired_at}  - (current)",
        "2 key version(s)",
    ]
    assert usage_error(db, "keys", "show", "--version", "3") == (
        "Error: Invalid value for --version: no public key version 3"
    )
    assert usage_error(db, "keys", "show", "--version", "0") == (
        "Error: Invalid value for '--version': 0 is not in the range x>=1"
    )
