"""``serve --auth sigv4`` says so in its banner; without an admin token it makes one up, prints
it once, and the admin API then requires exactly that token."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.backend_agnostic


def test_strict_mode_without_a_token_generates_and_prints_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARKETMETER_ADMIN_TOKEN", raising=False)
    server = ServerProcess(tmp_path / "ledger.db", CATALOG, "--auth", "sigv4")
    try:
        server.start()
        banner = server.output()
        assert (
            "  auth:    sigv4 (every request's signature verified against the catalog's access "
            "keys)\n           admin API token (generated): " in banner
        )
        assert (
            "Point AWS clients at it (a catalog access key of the right kind, a region of the "
            "service):\n" in banner
        )
        found = re.search(r"admin API token \(generated\): (\S+)\n", banner)
        assert found is not None
        token = found.group(1)
        assert len(token) == 32  # 24 random bytes, URL-safe base64
        usage = f"{server.url}/_marketmeter/usage"
        assert httpx.get(usage).status_code == 401
        assert httpx.get(usage, headers={"Authorization": "Bearer wrong"}).status_code == 403
        answer = httpx.get(usage, headers={"Authorization": f"Bearer {token}"})
        assert (answer.status_code, answer.json()) == (200, {"records": []})
        assert httpx.get(f"{server.url}/_marketmeter/health").status_code == 200
    finally:
        server.stop()


def test_a_given_token_is_never_printed(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "ledger.db",
        CATALOG,
        *("--auth", "sigv4", "--admin-token", "s3cret-admin-token-e2e"),
    )
    try:
        server.start()
        answer = httpx.get(
            f"{server.url}/_marketmeter/usage",
            headers={"Authorization": "Bearer s3cret-admin-token-e2e"},
        )
        assert answer.status_code == 200
    finally:
        server.stop()
    output = server.output()
    assert "admin API: Authorization: Bearer <the --admin-token given>" in output
    assert "s3cret-admin-token-e2e" not in output


def test_open_mode_says_so(server: ServerProcess) -> None:
    assert "  auth:    open (requests accepted signed or unsigned)\n" in server.output()
    assert "Point AWS clients at it (any credentials, any region):\n" in server.output()
