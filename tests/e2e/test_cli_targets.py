"""One operator, two ways to reach it: a ledger command acts on a running server with
``--endpoint`` (its service clock) or straight on a database with ``--db`` (in process, the
wall clock), and prints the same either way.

The seller froze the server's clock a day back: a subscription, a token and an applied
catalog made through ``--endpoint`` follow that clock, as the admin API's do; the same commands
on the database follow the wall clock. Real server process, real ``marketmeter`` subprocesses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.buyers import admin
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

FROZEN = "2026-11-20T10:20:00Z"
FROZEN_EPOCH = 1795602000
FROZEN_HOUR = FROZEN_EPOCH // 3600 * 3600


def run(server: ServerProcess, *args: str) -> str:
    result = mm(*args, cwd=server.db.parent)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def on_server(server: ServerProcess, *args: str) -> str:
    return run(server, *args, "--endpoint", server.url)


def on_database(server: ServerProcess, *args: str) -> str:
    return run(server, *args, "--db", server.db_url)


def frozen(server: ServerProcess) -> None:
    run(server, "clock", "set", FROZEN, "--endpoint", server.url)


def token_info(server: ServerProcess, token: str) -> dict[str, Any]:
    status, body = admin(server.url, "GET", "/_marketmeter/tokens?limit=10000")
    assert status == 200, body
    [found] = [t for t in body["tokens"] if t["token"] == token]
    return dict(found)


def test_subscribe_through_the_server_follows_its_clock(server: ServerProcess) -> None:
    frozen(server)

    shown = json.loads(
        on_server(
            server, "subscribe", "--product", "prod-legacy", "--buyer", "181818181818",
            "--no-deliver", "--json",
        )
    )  # fmt: skip

    assert shown["buyer"] == {
        "accountId": "181818181818",
        "customerIdentifier": shown["buyer"]["customerIdentifier"],
        "created": True,
    }
    assert shown["agreement"]["created"] is True
    assert shown["token"]["issuedAt"] == FROZEN
    assert shown["token"] == token_info(server, shown["token"]["token"])
    agreement = json.loads(
        on_server(server, "agreements", "show", shown["agreement"]["agreementId"], "--json")
    )
    assert agreement["startsAt"] == "2026-11-20T10:00:00Z"  # the frozen clock's hour
    assert agreement["state"] == "subscribed"


def test_subscribe_on_the_database_follows_the_wall_clock(server: ServerProcess) -> None:
    frozen(server)
    before = time.time()

    shown = json.loads(
        on_database(
            server, "subscribe", "--product", "prod-legacy", "--buyer", "191919191919",
            "--no-deliver", "--json",
        )
    )  # fmt: skip

    issued = token_info(server, shown["token"]["token"])["issuedAt"]
    assert issued != FROZEN
    assert abs(_epoch(issued) - before) < 60
    # the server sees the agreement the database got, at once
    agreement = json.loads(
        on_server(server, "agreements", "show", shown["agreement"]["agreementId"], "--json")
    )
    assert agreement["buyerAccountId"] == "191919191919"


def test_token_mint_through_the_server_is_issued_on_its_clock(server: ServerProcess) -> None:
    frozen(server)

    token = on_server(
        server, "token", "mint", "--product", "prod-legacy", "--buyer", "444455556666"
    ).strip()

    info = token_info(server, token)
    assert (info["issuedAt"], info["expiresAt"]) == (FROZEN, "2026-11-20T14:20:00Z")
    listed = json.loads(on_server(server, "token", "list", "--buyer", "444455556666", "--json"))
    assert info in listed["tokens"]


def test_agreements_work_on_a_database_too(server: ServerProcess) -> None:
    listed = on_database(server, "agreements", "list", "--product", "prod-legacy", "--json")
    through_server = on_server(server, "agreements", "list", "--product", "prod-legacy", "--json")

    assert json.loads(listed) == json.loads(through_server)
    assert len(json.loads(listed)["agreements"]) >= 1


def test_catalog_apply_through_the_server(server: ServerProcess, tmp_path: Path) -> None:
    frozen(server)
    catalog = tmp_path / "more.yaml"
    catalog.write_text(
        "buyers:\n"
        '  - account_id: "202020202020"\n'
        "agreements:\n"
        '  - buyer: "202020202020"\n'
        "    product: prod-legacy\n"
    )

    out = on_server(server, "catalog", "apply", str(catalog))

    version = admin(server.url, "GET", "/_marketmeter/health")[1]["catalogVersion"]
    assert out == (
        f"applied {catalog}: 0 seller(s), 0 product(s), 1 buyer(s), 1 agreement(s); catalog "
        f"version {version}; 1 registration token(s) minted (marketmeter token list)\n"
    )
    [minted] = json.loads(on_server(server, "token", "list", "--buyer", "202020202020", "--json"))[
        "tokens"
    ]
    assert minted["issuedAt"] == FROZEN


def test_catalog_apply_through_the_server_refuses_the_whole_document(
    server: ServerProcess, tmp_path: Path
) -> None:
    catalog = tmp_path / "bad.yaml"
    catalog.write_text('buyers:\n  - account_id: "12"\n')

    result = mm("catalog", "apply", str(catalog), "--endpoint", server.url, cwd=tmp_path)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(
        f"Error: catalog: {catalog}: 1 problem(s), nothing applied:\n"
        "  - buyers[0] (12): account_id: String should match pattern '^[0-9]{12}$'"
    ), result.stderr


def test_usage_and_keys_print_the_same_either_way(server: ServerProcess) -> None:
    for command in (("usage", "list"), ("keys", "list", "--json"), ("token", "list")):
        assert on_server(server, *command) == on_database(server, *command), command


def test_endpoint_and_db_together_are_refused(server: ServerProcess) -> None:
    result = mm(
        "usage", "list", "--endpoint", server.url, "--db", server.db_url, cwd=server.db.parent
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("Error: give --endpoint or --db, not both (see 'marketmeter ")


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
