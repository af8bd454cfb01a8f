"""The README's SaaS sign-up flow, run as written: a real server with the demo catalog, the
example registration page (docs/examples/registration_page.py) as a real process, and the
README's terminal-3 block through bash (only the ports are substituted, since 8686 and 8000 may
be taken on the test machine). The block's commands use the default ledger, marketmeter.db in
the current directory, which is the server's; on PostgreSQL (``MARKETMETER_TEST_DB``) they are
pointed at the server's database through ``MARKETMETER_DB`` instead."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketmeter.server import demo_catalog_text
from tests.e2e.server_process import ServerProcess, on_postgres
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGE = ROOT / "docs" / "examples" / "registration_page.py"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- saas-flow:start -->\n```sh[^\n]*\n(.*?)```\n<!-- saas-flow:end -->", text, re.S
    )
    assert found is not None, "README lost its saas-flow block"
    return found.group(1)


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_readme_saas_flow_runs_as_written(tmp_path: Path) -> None:
    page_port = free_port()
    catalog = tmp_path / "demo.yaml"
    catalog.write_text(
        demo_catalog_text().replace("127.0.0.1:8000/", f"127.0.0.1:{page_port}/"),
        encoding="utf-8",
    )
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    server = ServerProcess(tmp_path / "marketmeter.db", catalog).start()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MARKETMETER_DB"
    }
    if on_postgres():
        env["MARKETMETER_DB"] = server.db_url
    env.update(
        MARKETMETER_URL=server.url,
        PORT=str(page_port),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    page = subprocess.Popen(
        [sys.executable, str(PAGE)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(page_port)
        block = readme_block().replace("127.0.0.1:8686", f"127.0.0.1:{server.port}")
        block = block.replace("127.0.0.1:8000", f"127.0.0.1:{page_port}")
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        page.terminate()
        page_output, _ = page.communicate(timeout=10)
        server.stop()

    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith("subscribed buyer 555566667777 to demo-saas-legacy\n")
    assert "  buyer:      555566667777 (existing), CustomerIdentifier dave-cust-0004\n" in out
    assert (
        f"POST http://127.0.0.1:{page_port}/marketplace/register (x-amzn-marketplace-token)\n"
        in out
    )
    assert "  -> 200 OK\n" in out
    assert "     CustomerIdentifier=dave-cust-0004\n" in out
    assert '"Status": "Success"' in out
    assert out.rstrip().endswith("demo-saas-legacy  users      3\n1 dimension(s)")
    assert "Welcome! Your subscription is set up.\nProductCode=demo-saas-legacy\n" in page_output
    assert "CustomerAWSAccountId=555566667777\n" in page_output
