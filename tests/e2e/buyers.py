"""Buyer-side clients and the service clock, for the end-to-end tests of MeterUsage,
ResolveCustomer and RegisterUsage against a real server.

The test catalog (tests/data/catalog.yaml) gives buyers access keys: alice
(AKIATESTALICE0000001, entitled to prod-ami, prod-agent (per request), prod-container), carol
(AKIATESTCAROL0000001, suspended) and dave (AKIATESTDAVE00000001, no agreement). The instance,
task or pod is the session token when one is given, else the access key id.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

__all__ = [
    "ALICE_KEY",
    "CAROL_KEY",
    "DAVE_KEY",
    "SELLER_KEY",
    "ClockControl",
    "admin",
    "buyer_client",
]

ALICE_KEY = ("AKIATESTALICE0000001", "alice-secret")
CAROL_KEY = ("AKIATESTCAROL0000001", "carol-secret")
DAVE_KEY = ("AKIATESTDAVE00000001", "dave-secret")
SELLER_KEY = ("AKIATESTSELLER000001", "test-seller-secret")


def buyer_client(
    url: str, key: tuple[str, str] = ALICE_KEY, session: str | None = None, **config: Any
) -> Any:
    """boto3's meteringmarketplace client signing with a buyer's key (and session token)."""
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        aws_session_token=session,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def admin(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the admin API; returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, kind = response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers["content-type"]
    if kind and kind.startswith("application/json"):
        return status, json.loads(raw)
    return status, raw.decode()


class ClockControl:
    """The server's service clock, through ``/_marketmeter/clock``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def state(self) -> dict[str, Any]:
        status, body = admin(self.url, "GET", "/_marketmeter/clock")
        assert status == 200, body
        return dict(body)

    def set(self, epoch: float, frozen: bool = True) -> dict[str, Any]:
        status, body = admin(
            self.url, "PUT", "/_marketmeter/clock", {"time": epoch, "frozen": frozen}
        )
        assert status == 200, body
        return dict(body)

    def advance(self, seconds: float) -> dict[str, Any]:
        status, body = admin(self.url, "POST", "/_marketmeter/clock/advance", {"seconds": seconds})
        assert status == 200, body
        return dict(body)

    def reset(self) -> dict[str, Any]:
        status, body = admin(self.url, "DELETE", "/_marketmeter/clock")
        assert status == 200, body
        return dict(body)
