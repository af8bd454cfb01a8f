"""A catalog at seller scale, 20,000 buyers and their 20,000 agreements, through the real
command and server: ``catalog apply`` takes it, ``serve --catalog`` on the ledger that holds it
recognises it unchanged instead of applying it again, and the admin API takes it in bulk (the
document as the body, streamed). The 200,000-buyer memory bound is checked by
``python -m bench.catalog_scale``, not here."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.cli_runner import mm
from tests.e2e.server_process import ServerProcess, ledger_url

pytestmark = pytest.mark.e2e

BUYERS = 20_000
SUMMARY = f"1 seller(s), 1 product(s), {BUYERS} buyer(s), {BUYERS} agreement(s)"


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "customers.yaml"
    lines = [
        'sellers:\n  - {account_id: "111122223333"}\n',
        'products:\n  - {product_code: scale-saas, seller: "111122223333", kind: saas, '
        "dimensions: [users]}\n",
        "buyers:\n",
        *(
            f'  - {{account_id: "{100000000000 + i}", customer_identifier: c{i}}}\n'
            for i in range(BUYERS)
        ),
        "agreements:\n",
        *(f'  - {{buyer: "{100000000000 + i}", product: scale-saas}}\n' for i in range(BUYERS)),
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _banner_line(server: ServerProcess) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in server.output().splitlines() if line.startswith("  catalog:")]
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise AssertionError(server.output())


def test_a_seller_scale_catalog_applies_and_serve_recognises_it_unchanged(
    big_catalog: Path, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"

    applied = mm("catalog", "apply", str(big_catalog), "--db", ledger_url(db), cwd=tmp_path)

    assert (applied.returncode, applied.stderr) == (0, "")
    assert applied.stdout == (
        f"applied {big_catalog}: {SUMMARY}; catalog version 1; {BUYERS} registration token(s) "
        "minted (marketmeter token list)\n"
    )
    server = ServerProcess(db, big_catalog).start(timeout=60)
    try:
        assert _banner_line(server) == (
            f"  catalog: {big_catalog}, unchanged since catalog version 1: {SUMMARY}"
        )
        health = httpx.get(f"{server.url}/_marketmeter/health").json()
        assert health["catalogVersion"] == 1
        bulk = httpx.post(
            f"{server.url}/_marketmeter/catalog",
            params={"source": "customers.yaml"},
            content=big_catalog.read_bytes(),
            headers={"Content-Type": "application/yaml"},
            timeout=120,
        )
        assert (bulk.status_code, bulk.json()) == (
            200,
            {
                "source": "customers.yaml",
                "sellers": 1,
                "products": 1,
                "buyers": BUYERS,
                "agreements": BUYERS,
                "catalogVersion": 2,
                "tokensMinted": 0,
            },
        )
        bad = big_catalog.read_bytes().replace(b"c19999}", b"c19999, colour: red}")
        refused = httpx.post(
            f"{server.url}/_marketmeter/catalog",
            params={"source": "customers.yaml"},
            content=bad,
            headers={"Content-Type": "application/yaml"},
            timeout=120,
        )
        assert (refused.status_code, refused.json()) == (
            400,
            {
                "error": "customers.yaml: 1 problem(s), nothing applied:\n"
                "  - buyers[19999] (100000019999): colour: unknown field",
                "field": "catalog",
            },
        )
        assert httpx.get(f"{server.url}/_marketmeter/health").json()["catalogVersion"] == 2
    finally:
        server.stop()
