"""The shell blocks of docs/test-bench.md, docs/service-clock.md,
docs/subscription-lifecycle.md and docs/agreement-api.md work when pasted: each block
runs through bash against a fresh server with the demo catalog (only the endpoint is changed);
every ``curl`` must get a 2xx and every ``marketmeter`` command must exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketmeter.testing import MarketmeterServer

DOCS = Path(__file__).resolve().parents[2] / "docs"
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_DEFAULT_ENDPOINT = "http://127.0.0.1:8686"


def shell_blocks() -> Iterator[tuple[str, str]]:
    for name in (
        "test-bench.md",
        "service-clock.md",
        "subscription-lifecycle.md",
        "agreement-api.md",
    ):
        for number, block in enumerate(_SH_BLOCK.findall((DOCS / name).read_text()), start=1):
            yield f"{name}#{number}", block


def runnable(block: str, endpoint: str) -> str:
    """The block as a script: stop at the first failure; curl fails on an HTTP error and keeps
    quiet; ``marketmeter serve`` lines (which would start another server) are left out."""
    lines = [line for line in block.splitlines() if not line.startswith("marketmeter serve")]
    script = "\n".join(lines).replace(_DEFAULT_ENDPOINT, endpoint)
    script = script.replace("curl -s ", "curl -sSf -o /dev/null ")
    marketmeter = str(Path(sys.executable).parent / "marketmeter")
    script = re.sub(r"^marketmeter ", f"{marketmeter} ", script, flags=re.MULTILINE)
    # the AWS CLI of the test environment (awscli v1, the dev extra's)
    script = re.sub(r"^aws ", f"{sys.executable} -m awscli ", script, flags=re.MULTILINE)
    return "set -euo pipefail\n" + script + "\n"


BLOCKS = dict(shell_blocks())


def test_the_docs_have_their_blocks() -> None:
    assert len(BLOCKS) == 14
    assert all("marketmeter" in block or "curl" in block for block in BLOCKS.values())


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_shell_block_runs_as_written(name: str) -> None:
    with MarketmeterServer() as server:
        run = subprocess.run(
            ["bash", "-c", runnable(BLOCKS[name], server.endpoint)],
            env={
                **os.environ,
                "MARKETMETER_ENDPOINT": server.endpoint,
                # moto_server and aws (subscription-lifecycle.md) from this environment
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, f"{name}:\n{run.stdout}\n{run.stderr}"
