"""A strict-mode server for a seller's tests: its admin client carries the admin token, and
boto3 signing with the catalog's keys is accepted."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import httpx

from marketmeter.config import Settings
from marketmeter.testing import MarketmeterServer

CATALOG = Path(__file__).resolve().parents[1] / "data" / "catalog.yaml"


def test_a_strict_server_in_process_bills_signed_calls_and_guards_its_admin_api(
    tmp_path: Path,
) -> None:
    settings = Settings(
        port=0, db=str(tmp_path / "l.db"), catalog=CATALOG, auth="sigv4", admin_token="tok-1"
    )
    with MarketmeterServer(settings=settings) as server:
        client = boto3.client(
            "meteringmarketplace",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIATESTSELLER000001",
            aws_secret_access_key="test-seller-secret",
        )
        answer = client.batch_meter_usage(
            ProductCode="prod-legacy",
            UsageRecords=[
                {
                    "Timestamp": int(time.time()),
                    "CustomerIdentifier": "cust-alice",
                    "Dimension": "users",
                    "Quantity": 2,
                }
            ],
        )
        assert answer["Results"][0]["Status"] == "Success"
        assert [r["quantity"] for r in server.admin.usage()] == [2]
        assert httpx.get(f"{server.endpoint}/_marketmeter/usage").status_code == 401
