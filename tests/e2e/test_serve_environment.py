"""``serve`` configured by the environment alone, as a container is: one ``MARKETMETER_*``
variable per option, and a catalog directory applied at start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest

from marketmeter.cli import main
from marketmeter.store.open import open_store
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ledger_url
from tests.e2e.wire_records import record
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]

SERVE_ENVIRONMENT = {
    "host": "MARKETMETER_HOST",
    "port": "MARKETMETER_PORT",
    "db": "MARKETMETER_DB",
    "catalog": "MARKETMETER_CATALOG",
    "catalog_dir": "MARKETMETER_CATALOG_DIR",
    "window": "MARKETMETER_WINDOW",
    "future_skew": "MARKETMETER_FUTURE_SKEW",
    "meter_usage_window": "MARKETMETER_METER_USAGE_WINDOW",
    "dry_run_answer": "MARKETMETER_DRY_RUN_ANSWER",
    "token_ttl": "MARKETMETER_TOKEN_TTL",
    "token_reuse": "MARKETMETER_TOKEN_REUSE",
    "synchronous": "MARKETMETER_SYNC",
    "quota": "MARKETMETER_QUOTA",
    "journal_size": "MARKETMETER_JOURNAL_SIZE",
    "journal_bytes": "MARKETMETER_JOURNAL_BYTES",
    "auth": "MARKETMETER_AUTH",
    "admin_token": "MARKETMETER_ADMIN_TOKEN",
    "admin_token_file": "MARKETMETER_ADMIN_TOKEN_FILE",
    "allowed_hosts": "MARKETMETER_ALLOWED_HOST",
    "unsubscribe_delay": "MARKETMETER_UNSUBSCRIBE_DELAY",
    "log_format": "MARKETMETER_LOG_FORMAT",
    "log_level": "MARKETMETER_LOG_LEVEL",
    "workers": "MARKETMETER_WORKERS",
    "max_connections": "MARKETMETER_MAX_CONNECTIONS",
    "max_header_bytes": "MARKETMETER_MAX_HEADER_BYTES",
    "max_headers": "MARKETMETER_MAX_HEADERS",
    "idle_timeout": "MARKETMETER_IDLE_TIMEOUT",
    "header_timeout": "MARKETMETER_HEADER_TIMEOUT",
    "request_timeout": "MARKETMETER_REQUEST_TIMEOUT",
    "processing_timeout": "MARKETMETER_PROCESSING_TIMEOUT",
}

SELLER = 'sellers:\n  - {account_id: "111122223333", name: Seed Seller}\n'
PRODUCTS = """\
products:
  - {product_code: prod-seed, seller: "111122223333", kind: saas, dimensions: [users]}
buyers:
  - {account_id: "444455556666", customer_identifier: cust-seed}
agreements:
  - {buyer: "444455556666", product: prod-seed, start: 2020-01-01T00:00:00Z}
"""


def test_every_serve_option_has_one_environment_variable_shown_in_its_help() -> None:
    serve = (
        main.get_command(click.Context(main), "serve") if isinstance(main, click.Group) else None
    )
    assert serve is not None
    options = [p for p in serve.params if isinstance(p, click.Option)]

    assert {o.name: o.envvar for o in options} == SERVE_ENVIRONMENT
    assert all(o.show_envvar for o in options)


def test_serve_runs_from_the_environment_alone_with_a_catalog_directory(
    tmp_path: Path, now: int
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "10-seller.yaml").write_text(SELLER)
    (seed / "20-products.yaml").write_text(PRODUCTS)
    (seed / "notes.txt").write_text("not a catalog file")
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "MARKETMETER_HOST": "127.0.0.1",
        "MARKETMETER_PORT": str(port),
        "MARKETMETER_DB": ledger_url(tmp_path / "ledger.db"),
        "MARKETMETER_CATALOG_DIR": str(seed),
        "MARKETMETER_JOURNAL_SIZE": "7",
        "MARKETMETER_JOURNAL_BYTES": "65536",
        "MARKETMETER_MAX_CONNECTIONS": "50",
        "MARKETMETER_TOKEN_TTL": "7200",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "marketmeter", "serve"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        answer = make_client(url).batch_meter_usage(
            ProductCode="prod-seed", UsageRecords=[record(now, "cust-seed")]
        )
        assert [r["Status"] for r in answer["Results"]] == ["Success"]
    finally:
        process.terminate()
        code = process.wait(timeout=15)
    assert code == 0
    lines = log.read_text().splitlines()
    assert (
        f"  catalog: {seed} (2 files): 1 seller(s), 1 product(s), 1 buyer(s), 1 agreement(s)"
        in (lines)
    )
    assert "  tokens:  registration tokens expire after 2 hours (marketmeter token list)" in lines
    assert any(
        line.startswith("  bench:   quota off; journal of the last 7 calls, 64 KiB of bodies")
        for line in lines
    )
    assert any(line.startswith("  limits:  50 connections;") for line in lines)


def test_a_catalog_directory_with_a_problem_stops_serve_with_every_problem(
    tmp_path: Path,
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "10-products.yaml").write_text(PRODUCTS)
    environment = {
        **os.environ,
        "MARKETMETER_PORT": str(free_port()),
        "MARKETMETER_DB": str(tmp_path / "ledger.db"),
        "MARKETMETER_CATALOG_DIR": str(seed),
    }
    result = subprocess.run(
        [sys.executable, "-m", "marketmeter", "serve"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {seed} (1 file): 1 problem(s), nothing applied:\n"
        "  - 10-products.yaml: products[0] (prod-seed): seller: no seller with account_id "
        "111122223333\n"
    )
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        assert store.catalog_snapshot_now().version == 0  # not even the demo catalog
    finally:
        store.close_now()


def test_a_bad_value_in_the_environment_is_one_error_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "marketmeter", "serve"],
        capture_output=True,
        text=True,
        env={**os.environ, "MARKETMETER_AUTH": "none"},
        cwd=tmp_path,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == (
        "Error: Invalid value for '--auth' (env var: 'MARKETMETER_AUTH'): 'none' is not one "
        "of 'open', 'sigv4' (see 'marketmeter serve -h')\n"
    )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"marketmeter exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_marketmeter/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"marketmeter did not become healthy:\n{log.read_text()}")
