"""``marketmeter subscribe`` end to end: the SaaS sign-up flow against a real seller page.

The seller's registration page is a real HTTP server on 127.0.0.1 (tests/e2e/
registration_page.py) that records the form POST; the command runs as a subprocess next to a
running ``marketmeter serve`` on the same database, and the seller then resolves the delivered
token and meters the new customer with boto3.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketmeter.catalog.model import agreement_id_for, customer_identifier_for
from marketmeter.store.open import open_store
from tests.e2e.buyers import admin
from tests.e2e.cli_runner import mm
from tests.e2e.registration_page import RegistrationPage
from tests.e2e.server_process import CATALOG, ServerProcess, ledger_url
from tests.ports import free_port

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"[A-Za-z0-9_-]{64}")
FORM = "application/x-www-form-urlencoded"
SIGNUP = "https://seller.example/signup?session=s-1"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"


@pytest.fixture
def page() -> Iterator[RegistrationPage]:
    with RegistrationPage() as running:
        running.answer(302, SIGNUP, "Redirecting to the sign-up form")
        yield running


def subscribe(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mm("subscribe", *args, "--db", ledger_url(db), cwd=db.parent)


def subscribed_json(db: Path, *args: str) -> dict[str, Any]:
    result = subscribe(db, *args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def tokens_of(server: ServerProcess, buyer: str) -> list[dict[str, Any]]:
    status, body = admin(server.url, "GET", f"/_marketmeter/tokens?buyer={buyer}")
    assert status == 200, body
    found: list[dict[str, Any]] = body["tokens"]
    return found


def agreements_of(db: Path, buyer: str) -> list[dict[str, Any]]:
    shown = mm("catalog", "show", "--db", ledger_url(db), cwd=db.parent)
    assert shown.returncode == 0, shown.stderr
    return [a for a in json.loads(shown.stdout)["agreements"] if a["buyer_account_id"] == buyer]


def resolve(client: Any, token: str) -> dict[str, Any]:
    response = dict(client.resolve_customer(RegistrationToken=token))
    response.pop("ResponseMetadata")
    return response


def hour_of(epoch: float) -> int:
    return int(epoch // 3600) * 3600


def test_saas_sign_up_flow(server: ServerProcess, client: Any, page: RegistrationPage) -> None:
    url = page.url("/register")

    before = time.time()
    result = subscribe(
        server.db, "--product", "prod-legacy", "--buyer", "121212121212", "--url", url
    )
    after = time.time()

    assert (result.returncode, result.stderr) == (0, "")
    [received] = page.received
    token = received.form["x-amzn-marketplace-token"][0]
    assert TOKEN.fullmatch(token)
    assert (received.method, received.path) == ("POST", "/register")
    assert received.headers["content-type"] == FORM
    assert received.form == {"x-amzn-marketplace-token": [token]}
    assert received.raw_body == f"x-amzn-marketplace-token={token}".encode()

    [info] = tokens_of(server, "121212121212")
    license_arn = info["licenseArn"]
    identifier = customer_identifier_for("121212121212")
    assert info["token"] == token
    assert license_arn.startswith("arn:aws:license-manager::294406891311:license:l-")
    assert result.stdout.splitlines() == [
        "subscribed buyer 121212121212 to prod-legacy",
        f"  buyer:      121212121212 (new), CustomerIdentifier {identifier}",
        f"  agreement:  {license_arn} (new; {agreement_id_for(license_arn)})",
        f"  token:      {token}",
        f"              expires {info['expiresAt']}",
        f"POST {url} (x-amzn-marketplace-token)",
        "  -> 302 Found",
        f"     Location: {SIGNUP}",
        "     Redirecting to the sign-up form",
    ]

    # The seller's backend resolves the token it received ...
    assert resolve(client, token) == {
        "CustomerIdentifier": identifier,
        "ProductCode": "prod-legacy",
        "CustomerAWSAccountId": "121212121212",
        "LicenseArn": license_arn,
        "Metadata": {"AgreementId": agreement_id_for(license_arn)},
    }
    # ... and meters the new customer, from the start of the hour it subscribed in on.
    [agreement] = agreements_of(server.db, "121212121212")
    assert agreement["starts_at"] in {hour_of(before), hour_of(after)}
    start = int(agreement["starts_at"])
    metered = client.batch_meter_usage(
        ProductCode="prod-legacy",
        UsageRecords=[
            {
                "Timestamp": start,
                "CustomerIdentifier": identifier,
                "Dimension": "users",
                "Quantity": 3,
            },
            {
                "Timestamp": start - 1,
                "CustomerIdentifier": identifier,
                "Dimension": "api_calls",
                "Quantity": 1,
            },
        ],
    )
    assert [r["Status"] for r in metered["Results"]] == ["Success", "CustomerNotSubscribed"]
    status, usage = admin(server.url, "GET", "/_marketmeter/usage?customer=121212121212")
    assert status == 200
    assert [
        (r["meteringRecordId"], r["customerAWSAccountId"], r["customerIdentifier"], r["quantity"])
        for r in usage["records"]
    ] == [(metered["Results"][0]["MeteringRecordId"], "121212121212", identifier, 3)]


def test_free_trial_and_the_json_report(
    server: ServerProcess, client: Any, page: RegistrationPage
) -> None:
    url = page.url("/trial?source=marketplace")

    shown = subscribed_json(
        server.db, "--product", "prod-ca", "--buyer", "131313131313", "--free-trial", "--url", url
    )

    [received] = page.received
    token = received.form["x-amzn-marketplace-token"][0]
    assert received.path == "/trial?source=marketplace"
    assert received.form == {
        "x-amzn-marketplace-token": [token],
        "x-amzn-marketplace-offer-type": ["free-trial"],
    }
    assert received.raw_body == (
        f"x-amzn-marketplace-token={token}&x-amzn-marketplace-offer-type=free-trial".encode()
    )
    [info] = tokens_of(server, "131313131313")
    license_arn = info["licenseArn"]
    assert shown == {
        "buyer": {"accountId": "131313131313", "customerIdentifier": None, "created": True},
        "agreement": {
            "licenseArn": license_arn,
            "agreementId": agreement_id_for(license_arn),
            "created": True,
        },
        "token": {
            "token": token,
            "productCode": "prod-ca",
            "customerAWSAccountId": "131313131313",
            "licenseArn": license_arn,
            "offerType": "free-trial",
            "issuedAt": info["issuedAt"],
            "expiresAt": info["expiresAt"],
            "expired": False,
        },
        "delivery": {
            "url": url,
            "form": {
                "x-amzn-marketplace-token": token,
                "x-amzn-marketplace-offer-type": "free-trial",
            },
            "status": 302,
            "location": SIGNUP,
            "body": "Redirecting to the sign-up form",
            "error": None,
        },
    }
    assert info == shown["token"]
    [agreement] = agreements_of(server.db, "131313131313")
    assert (agreement["license_arn"], agreement["product_code"], agreement["free_trial"]) == (
        license_arn,
        "prod-ca",
        True,
    )
    assert agreement["starts_at"] == hour_of(agreement["starts_at"])  # the hour it began in
    assert time.time() - agreement["starts_at"] < 3660
    assert resolve(client, token) == {  # concurrent agreements: no CustomerIdentifier
        "ProductCode": "prod-ca",
        "CustomerAWSAccountId": "131313131313",
        "LicenseArn": license_arn,
        "Metadata": {"AgreementId": agreement_id_for(license_arn)},
    }


def test_a_failed_delivery_exits_1_and_keeps_the_subscription(
    server: ServerProcess, client: Any, page: RegistrationPage
) -> None:
    page.answer(500, None, "registration is down")
    refused_port = free_port()  # nothing listens there

    seller_error = subscribe(
        server.db, "--product", "prod-legacy", "--buyer", "151515151515", "--url", page.url()
    )
    unreachable = subscribe(
        server.db,
        "--product",
        "prod-legacy",
        "--buyer",
        "161616161616",
        "--url",
        f"http://127.0.0.1:{refused_port}/register",
    )

    assert seller_error.returncode == 1
    assert seller_error.stdout.splitlines()[-3:] == [
        f"POST {page.url()} (x-amzn-marketplace-token)",
        "  -> 500 Internal Server Error",
        "     registration is down",
    ]
    assert unreachable.returncode == 1
    last = unreachable.stdout.splitlines()[-1]
    assert last.startswith("  -> failed: ConnectError: "), last
    assert "failed" in last
    for buyer in ("151515151515", "161616161616"):
        [agreement] = agreements_of(server.db, buyer)
        [token] = tokens_of(server, buyer)
        assert token["licenseArn"] == agreement["license_arn"]
        assert resolve(client, token["token"])["CustomerAWSAccountId"] == buyer
    assert len(page.received) == 1


def test_the_products_registration_url_and_no_deliver(
    server: ServerProcess, page: RegistrationPage
) -> None:
    update = server.db.parent / "registration-url.yaml"
    update.write_text(
        f"""\
products:
  - product_code: prod-ca
    seller: "111122223333"
    kind: saas
    integration: concurrent-agreements
    dimensions: [requests]
    registration_url: {page.url("/from-catalog")}
""",
        encoding="utf-8",
    )
    applied = mm("catalog", "apply", str(update), "--db", server.db_url, cwd=server.db.parent)
    assert applied.returncode == 0, applied.stderr

    delivered = subscribed_json(server.db, "--product", "prod-ca", "--buyer", "171717171717")
    skipped = subscribed_json(
        server.db, "--product", "prod-ca", "--buyer", "181818181818", "--no-deliver"
    )
    skipped_text = subscribe(
        server.db, "--product", "prod-ca", "--buyer", "181818181818", "--no-deliver"
    )
    no_url = subscribe(server.db, "--product", "prod-legacy", "--buyer", "191919191919")

    [received] = page.received  # only the first subscription posted
    assert received.path == "/from-catalog"
    assert received.form == {"x-amzn-marketplace-token": [delivered["token"]["token"]]}
    assert delivered["delivery"]["url"] == page.url("/from-catalog")
    assert delivered["delivery"]["status"] == 302
    assert skipped["delivery"] is None
    assert TOKEN.fullmatch(skipped["token"]["token"])
    assert skipped_text.returncode == 0
    assert skipped_text.stdout.splitlines()[-1] == "  delivery:   skipped (--no-deliver)"
    assert "(already active;" in skipped_text.stdout.splitlines()[2]
    assert no_url.returncode == 0
    assert no_url.stdout.splitlines()[-1] == (
        "  delivery:   none: the product has no registration_url (give --url)"
    )
    assert len(tokens_of(server, "181818181818")) == 2  # every subscribe mints a token


def test_an_entitled_buyer_reuses_its_agreement(
    server: ServerProcess, client: Any, page: RegistrationPage
) -> None:
    shown = subscribed_json(
        server.db, "--product", "prod-legacy", "--buyer", "444455556666", "--url", page.url()
    )

    assert shown["buyer"] == {
        "accountId": "444455556666",
        "customerIdentifier": "cust-alice",
        "created": False,
    }
    assert shown["agreement"] == {
        "licenseArn": ALICE_LEGACY,
        "agreementId": agreement_id_for(ALICE_LEGACY),
        "created": False,
    }
    assert shown["token"]["licenseArn"] == ALICE_LEGACY
    assert shown["delivery"]["status"] == 302
    assert len(agreements_of(server.db, "444455556666")) == 6  # unchanged
    assert resolve(client, shown["token"]["token"])["CustomerIdentifier"] == "cust-alice"


def test_an_ami_subscription_has_no_token(server: ServerProcess, page: RegistrationPage) -> None:
    shown = subscribed_json(
        server.db, "--product", "prod-ami", "--buyer", "141414141414", "--url", page.url()
    )

    license_arn = shown["agreement"]["licenseArn"]
    assert shown == {
        "buyer": {"accountId": "141414141414", "customerIdentifier": None, "created": True},
        "agreement": {
            "licenseArn": license_arn,
            "agreementId": agreement_id_for(license_arn),
            "created": True,
        },
        "token": None,
        "delivery": None,
    }
    assert page.received == []
    assert tokens_of(server, "141414141414") == []
    [agreement] = agreements_of(server.db, "141414141414")
    assert agreement == {
        "license_arn": license_arn,
        "buyer_account_id": "141414141414",
        "product_code": "prod-ami",
        "state": "subscribed",
        "starts_at": agreement["starts_at"],
        "ends_at": None,
        "free_trial": False,
        "pending_since": None,
        "offer_id": None,
        "entitlements": [],
    }
    text = subscribe(server.db, "--product", "prod-ami", "--buyer", "141414141414")
    assert text.stdout.splitlines()[-1] == (
        "  token:      none (registration tokens are for SaaS products)"
    )


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with tests/data/catalog.yaml, shared by the tests that must change nothing."""
    db = tmp_path_factory.mktemp("subscribe") / "m.db"
    applied = mm("catalog", "apply", str(CATALOG), "--db", ledger_url(db), cwd=db.parent)
    assert applied.returncode == 0, applied.stderr
    return db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--product", "nope", "--buyer", "121212121212"),
            "Error: Invalid value for --product: no product with product code 'nope'",
        ),
        (
            ("--product", "prod-legacy", "--buyer", "1212"),
            "Error: Invalid value for --buyer: '1212' is not a 12-digit AWS account id",
        ),
        (
            ("--product", "prod-legacy", "--buyer", "111122223333"),
            "Error: Invalid value for --buyer: 111122223333 is a seller account",
        ),
        (
            ("--product", "prod-legacy", "--buyer", "121212121212", "--url", "ftp://x/"),
            "Error: Invalid value for --url: must be an http:// or https:// URL",
        ),
    ],
)
def test_bad_input_is_a_usage_error(catalog_db: Path, args: tuple[str, ...], message: str) -> None:
    result = subscribe(catalog_db, *args)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{message} (see 'marketmeter subscribe -h')\n"
    store = open_store(ledger_url(catalog_db))
    try:
        snapshot = store.catalog_snapshot_now()
    finally:
        store.close_now()
    assert (snapshot.version, len(snapshot.catalog.agreements)) == (1, 16)  # nothing applied
