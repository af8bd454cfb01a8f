"""ResolveCustomer end to end: boto3's seller client against a real ``marketmeter serve``.

Tokens come from where a seller gets them: minted when the catalog is applied (listed by
``GET /_marketmeter/tokens``), on demand (``POST /_marketmeter/tokens``, ``marketmeter token
mint``). Expiry is judged on the service clock, moved through ``/_marketmeter/clock``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.buyers import ClockControl, admin
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
TOKEN = re.compile(r"[A-Za-z0-9_-]{64}")
INVALID = (400, "InvalidTokenException", "The registration token is invalid.")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tokens(server: ServerProcess, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = admin(server.url, "GET", f"/_marketmeter/tokens?{query}")
    assert status == 200, body
    found: list[dict[str, Any]] = body["tokens"]
    return found


def catalog_token(server: ServerProcess, product: str, buyer: str) -> str:
    [token] = tokens(server, product=product, buyer=buyer)
    value: str = token["token"]
    return value


def mint(server: ServerProcess, **body: Any) -> dict[str, Any]:
    status, minted = admin(server.url, "POST", "/_marketmeter/tokens", body)
    assert status == 201, minted
    return dict(minted)


def resolve(client: Any, token: str) -> dict[str, Any]:
    response = dict(client.resolve_customer(RegistrationToken=token))
    assert response.pop("ResponseMetadata")["HTTPStatusCode"] == 200
    return response


def refused(client: Any, token: str) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        client.resolve_customer(RegistrationToken=token)
    response = raised.value.response
    assert (
        response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
        == (response["Error"]["Code"])
    )
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def legacy_answer(account: str, identifier: str, license_arn: str) -> dict[str, Any]:
    return {
        "CustomerIdentifier": identifier,
        "ProductCode": "prod-legacy",
        "CustomerAWSAccountId": account,
        "LicenseArn": license_arn,
        "Metadata": {"AgreementId": agreement_id_for(license_arn)},
    }


def test_catalog_tokens_resolve_legacy_and_concurrent_agreements(
    server: ServerProcess, client: Any
) -> None:
    minted = tokens(server)
    # One token per new SaaS agreement active at catalog apply: alice (3), bob (2); not the
    # suspended, unsubscribed, ended (frank, 2021) or future (erin, 2099) ones.
    assert len(minted) == 5
    assert sorted((t["customerAWSAccountId"], t["productCode"]) for t in minted) == [
        ("444455556666", "prod-ca"),
        ("444455556666", "prod-legacy"),
        ("444455556666", "prod-other"),
        ("777788889999", "prod-ca"),
        ("777788889999", "prod-legacy"),
    ]
    assert all(TOKEN.fullmatch(t["token"]) for t in minted)
    legacy = catalog_token(server, "prod-legacy", "444455556666")
    concurrent = catalog_token(server, "prod-ca", "444455556666")

    assert resolve(client, legacy) == legacy_answer("444455556666", "cust-alice", ALICE_LEGACY)
    assert resolve(client, concurrent) == {
        "ProductCode": "prod-ca",
        "CustomerAWSAccountId": "444455556666",
        "LicenseArn": ALICE_CA,
        "Metadata": {"AgreementId": agreement_id_for(ALICE_CA)},
    }
    assert resolve(client, catalog_token(server, "prod-legacy", "777788889999")) == (
        legacy_answer("777788889999", "cust-bob", BOB_LEGACY)
    )
    # The same token, again and again: the same answer.
    for _ in range(3):
        assert resolve(client, legacy) == legacy_answer("444455556666", "cust-alice", ALICE_LEGACY)
    assert agreement_id_for(ALICE_LEGACY).startswith("agmt-")
    assert len(agreement_id_for(ALICE_LEGACY)) == 30


def test_tokens_minted_on_demand(server: ServerProcess, client: Any) -> None:
    by_api = mint(server, productCode="prod-legacy", buyerAccountId="444455556666")
    environment = {k: v for k, v in os.environ.items() if k != "MARKETMETER_DB"}
    by_cli = subprocess.run(
        [
            *(sys.executable, "-m", "marketmeter", "token", "mint"),
            *("--product", "prod-ca", "--buyer", "444455556666", "--db", server.db_url),
        ],
        cwd=server.db.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert by_cli.returncode == 0, by_cli.stderr
    cli_token = by_cli.stdout.strip()
    assert by_cli.stdout == cli_token + "\n"
    assert TOKEN.fullmatch(cli_token)
    assert TOKEN.fullmatch(by_api["token"])
    assert by_api["productCode"] == "prod-legacy"
    assert by_api["licenseArn"] == ALICE_LEGACY
    assert resolve(client, by_api["token"]) == (
        legacy_answer("444455556666", "cust-alice", ALICE_LEGACY)
    )
    assert resolve(client, cli_token) == {
        "ProductCode": "prod-ca",
        "CustomerAWSAccountId": "444455556666",
        "LicenseArn": ALICE_CA,
        "Metadata": {"AgreementId": agreement_id_for(ALICE_CA)},
    }
    # Every token stays valid: the catalog's, the API's and the CLI's.
    listed = [t["token"] for t in tokens(server, buyer="444455556666", product="prod-legacy")]
    assert listed[0] == by_api["token"]  # newest first
    assert len(listed) == 2
    assert resolve(client, listed[1])["LicenseArn"] == ALICE_LEGACY


def test_invalid_tokens(server: ServerProcess, client: Any) -> None:
    assert refused(client, "garbage") == INVALID
    assert refused(client, "A" * 64) == INVALID  # well formed, never issued
    assert refused(client, "A" * 65) == INVALID
    valid = catalog_token(server, "prod-legacy", "444455556666")
    assert refused(client, valid[:-1] + ("A" if valid[-1] != "A" else "B")) == INVALID
    assert refused(client, valid + " ") == INVALID
    assert refused(client, "") == (
        400,
        "ValidationException",
        "1 validation error detected: Value '' at 'registrationToken' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [\\s\\S]+",
    )


def test_expiry_follows_the_service_clock(server: ServerProcess, client: Any) -> None:
    clock = ClockControl(server.url)
    issued = int(time.time()) - 86400
    clock.set(issued)
    minted = mint(server, productCode="prod-legacy", buyerAccountId="777788889999")
    assert (minted["issuedAt"], minted["expiresAt"], minted["expired"]) == (
        iso(issued),
        iso(issued + 4 * 3600),
        False,
    )

    clock.advance(4 * 3600 - 1)
    assert resolve(client, minted["token"]) == (
        legacy_answer("777788889999", "cust-bob", BOB_LEGACY)
    )
    clock.advance(1)
    assert refused(client, minted["token"]) == (
        400,
        "ExpiredTokenException",
        f"The registration token expired at {iso(issued + 4 * 3600)}.",
    )
    [listed] = [t for t in tokens(server) if t["token"] == minted["token"]]
    assert listed["expired"] is True
    # Moving the clock back makes it resolve again: expiry is judged, not stored.
    clock.advance(-1)
    assert resolve(client, minted["token"])["CustomerIdentifier"] == "cust-bob"


def test_token_ttl_option(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "x.db", CATALOG, "--token-ttl", "60").start()
    try:
        client = make_client(server.url)
        clock = ClockControl(server.url)
        issued = int(time.time()) - 86400
        clock.set(issued)
        minted = mint(server, productCode="prod-ca", buyerAccountId="444455556666")
        assert minted["expiresAt"] == iso(issued + 60)

        clock.advance(59)
        assert resolve(client, minted["token"])["LicenseArn"] == ALICE_CA
        clock.advance(1)
        assert refused(client, minted["token"]) == (
            400,
            "ExpiredTokenException",
            f"The registration token expired at {iso(issued + 60)}.",
        )
    finally:
        server.stop()


def test_tokens_survive_a_restart(server: ServerProcess, client: Any) -> None:
    legacy = catalog_token(server, "prod-legacy", "444455556666")
    minted = mint(server, productCode="prod-ca", buyerAccountId="777788889999")
    before = [resolve(client, legacy), resolve(client, minted["token"])]

    server.restart()
    client = make_client(server.url)

    assert [resolve(client, legacy), resolve(client, minted["token"])] == before
    assert len(tokens(server)) == 6  # restarting with the same catalog mints nothing new
