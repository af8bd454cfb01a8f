"""The shell blocks of docs/entitlement-service.md work when pasted: each runs through bash
against a fresh server with the demo catalog (only the endpoint changed) and must exit 0; the
upgrade it shows is what GetEntitlements answers next."""

from __future__ import annotations

import os
import re
import subprocess

import boto3

from marketmeter.testing import MarketmeterServer
from tests.docs.test_bench_docs_commands import DOCS, runnable

_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
ALICE_CONTRACT = "arn:aws:license-manager::294406891311:license:l-a11ce000000000000000000000000005"


def test_the_pages_commands_run_as_written() -> None:
    blocks = _SH_BLOCK.findall((DOCS / "entitlement-service.md").read_text())
    assert len(blocks) == 2
    with MarketmeterServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        for block in blocks:
            run = subprocess.run(
                ["bash", "-c", runnable(block, server.endpoint)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, f"{block}\n{run.stdout}\n{run.stderr}"
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
