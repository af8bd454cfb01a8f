"""The shell blocks of docs/entitlement-service.md, run as tests/docs/test_shell_blocks.py runs
them (against a fresh server with the demo catalog), do what the page says: the upgrade it
shows is what GetEntitlements answers next."""

from __future__ import annotations

import boto3

from marketmeter.testing import MarketmeterServer
from tests.docs.test_shell_blocks import BLOCKS, run_page

PAGE = "docs/entitlement-service.md"
ALICE_CONTRACT = "arn:aws:license-manager::294406891311:license:l-a11ce000000000000000000000000005"


def test_the_pages_commands_run_as_written() -> None:
    assert len([block for block in BLOCKS[PAGE] if block.runs]) == 2
    with MarketmeterServer() as server:
        run = run_page(PAGE, server)
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
        client = boto3.client(
            "marketplace-entitlement",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        answer = client.get_entitlements(
            ProductCode="demo-saas-contract", Filter={"LICENSE_ARN": [ALICE_CONTRACT]}
        )
    assert [
        (item["Dimension"], item["Value"], item["ExpirationDate"].timestamp())
        for item in answer["Entitlements"]
    ] == [
        ("AdminUsers", {"IntegerValue": 15}, 2114380800.0),
        ("premium_tier", {"BooleanValue": False}, 2114380800.0),
    ]
