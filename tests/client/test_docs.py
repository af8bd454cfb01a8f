"""docs/metering-client.md runs: its files are written to a directory and pytest runs them
there with the installed plugin, as a seller would; its API example is checked for the names
it uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import marketmeter.client
from marketmeter.client import MeteringClient, RecordState
from marketmeter.testing.pytest_plugin import TEST_ACCESS_KEY, TEST_REGION, Marketmeter
from tests.pytest_runs import PYTEST

PAGE = Path(__file__).parent.parent.parent / "docs" / "metering-client.md"
_FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def page_files() -> dict[str, str]:
    return dict(_FILE_BLOCK.findall(PAGE.read_text()))


def test_the_page_has_the_code_and_the_tests() -> None:
    assert sorted(page_files()) == ["test_usage_meter.py", "usage_meter.py"]


def test_the_pages_tests_pass(tmp_path: Path) -> None:
    for name, code in page_files().items():
        (tmp_path / name).write_text(code)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    run = subprocess.run(
        list(PYTEST),
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(tmp_path), "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("5 passed in ")


def test_the_usage_example_names_only_the_public_api() -> None:
    text = PAGE.read_text()
    imported = re.findall(r"from marketmeter\.client import ([\w, ]+)", text)
    names = {n.strip() for line in imported for n in line.split(",")}
    assert names <= set(marketmeter.client.__all__)
    assert {"MeteringClient", "Customer", "Allocation", "Backoff"} <= names


def test_the_shell_block_runs(marketmeter: Marketmeter, tmp_path: Path) -> None:
    # fenced "sh no-run: ..." for tests/docs, which has no spool to give it: it runs here
    [block] = re.findall(r"```sh[^\n]*\n(marketmeter-client .*?)```", PAGE.read_text(), re.DOTALL)
    now = datetime.now(UTC)
    meter = MeteringClient(tmp_path / "metering.db", "demo-saas-legacy", aws=object())
    meter.record("alice-cust-0001", "users", 3, now - timedelta(hours=1))
    meter.record("bob-cust-0002", "users", 4, now)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
        AWS_ENDPOINT_URL_MARKETPLACE_METERING=marketmeter.endpoint,
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY[0],
        AWS_SECRET_ACCESS_KEY=TEST_ACCESS_KEY[1],
        AWS_DEFAULT_REGION=TEST_REGION,
    )
    script = "set -e\n" + block.replace("http://127.0.0.1:8686", marketmeter.endpoint)
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    billed = sorted((r["customerIdentifier"], r["quantity"]) for r in marketmeter.usage())
    assert billed == [("alice-cust-0001", 3), ("bob-cust-0002", 4)]
    assert [r.state for r in meter.records()] == [RecordState.SENT, RecordState.SENT]
    assert run.stdout.splitlines()[-1] == "2 record(s)"
