"""Every shell block of README.md and docs/*.md runs as written (issue 23): the blocks of a
page run in order, in one bash at the repository's root, against one server started for that
page, and must leave nothing behind in the checkout. A page added to docs/ is covered with no
change here.

The conventions (docs/architecture.md, "Docs that paste", says the same):

- A block is fenced as ```` ```sh ```` (or ``bash``); a ``console`` or ``text`` block is output,
  not run.
- ```` ```sh no-run: REASON ```` marks a block the test cannot run (another machine, Docker, a
  second terminal that stays open, real AWS); the reason is required and should name where the
  block is tested otherwise, if it is.
- The page's server stands in for the one its blocks start: a line that starts one
  (``scripts/serve``, ``.venv/bin/marketmeter serve``) is not run, ``http://127.0.0.1:8686``
  and ``127.0.0.1:8686`` become the page server's address, and ``MARKETMETER_ENDPOINT`` and
  ``MARKETMETER_DB`` name it (as running the command beside ``scripts/serve`` would).
- ``<!-- docs-test serve: OPTIONS -->`` anywhere in a page starts the page's server with those
  ``marketmeter serve`` options (e.g. ``--auth sigv4``) in a process of its own.
- The command is ``.venv/bin/marketmeter`` in every block (README says once how to put it on
  PATH); the blocks run without ``.venv/bin`` on PATH, as pasted into a fresh terminal.
- ``curl -s`` runs as ``curl -sSf``: an HTTP error fails the block.
- A command shown failing on purpose ends with ``|| true`` (and says so in a comment).
- A block writes its files outside the checkout (``/tmp/...``), or removes them.

A failure names the page and the block (its number and first line) and shows its output."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from marketmeter.testing import MarketmeterServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUN = {"sh", "bash", "shell"}
_FENCE = re.compile(  # also a block indented under a list item
    r"^([ \t]*)```([\w-]*)[ \t]*([^\n]*)\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL
)
_SERVE_OPTIONS = re.compile(r"<!--\s*docs-test serve:\s*(.*?)\s*-->")
_STARTS_A_SERVER = re.compile(r"^\s*(scripts/serve|\.venv/bin/marketmeter serve)\b")
_BARE = re.compile(r"(^|[;&|(]\s*|\$\()\s*marketmeter\s", re.MULTILINE)
DEFAULT = "127.0.0.1:8686"


@dataclass(frozen=True, slots=True)
class Block:
    page: str
    number: int
    line: int
    info: str
    text: str

    @property
    def runs(self) -> bool:
        return not self.info.startswith("no-run")

    def describe(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"{self.page} block {self.number} (line {self.line}): {first}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text("utf-8")
    found: list[Block] = []
    for match in _FENCE.finditer(text):
        _indent, language, info, body = match.groups()
        if language in RUN:
            body = textwrap.dedent(body)
            line = text.count("\n", 0, match.start()) + 1
            name = str(page.relative_to(ROOT))
            found.append(Block(name, len(found) + 1, line, info.strip(), body))
    return found


BLOCKS = {str(page.relative_to(ROOT)): blocks(page) for page in PAGES}
RUNNABLE = sorted(name for name, found in BLOCKS.items() if any(b.runs for b in found))


def test_every_page_is_covered_and_every_skip_has_a_reason() -> None:
    assert "README.md" in BLOCKS
    assert "docs/test-bench.md" in RUNNABLE
    for found in BLOCKS.values():
        for block in found:
            if not block.runs:
                assert re.fullmatch(r"no-run: \S.*", block.info), block.describe()
            else:
                assert block.info == "", f"unknown info string {block.info!r}: {block.describe()}"


def test_the_command_is_named_one_way() -> None:
    for found in BLOCKS.values():
        for block in found:
            assert not _BARE.search(block.text), (
                f"{block.describe()}: call it .venv/bin/marketmeter (README says how to put it "
                "on PATH)"
            )


def script(page: str, endpoint: str) -> str:
    """The page's runnable blocks as one bash script, each announced on stderr."""
    parts = ["set -euo pipefail", f"cd {ROOT}", "trap 'echo \"failed: $BLOCK\" >&2' ERR"]
    address = endpoint.removeprefix("http://")
    for block in BLOCKS[page]:
        if not block.runs:
            continue
        lines = [
            ": # the page's server stands in" if _STARTS_A_SERVER.match(line) else line
            for line in block.text.splitlines()
        ]
        body = "\n".join(lines).replace(DEFAULT, address)
        body = body.replace("curl -s ", "curl -sSf ")  # an HTTP error fails the block
        parts.append(f"BLOCK={_quote(block.describe())}")
        parts.append('echo "--- $BLOCK" >&2')
        parts.append(body)
    return "\n".join(parts) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# What tests and tools running beside a page's blocks may create in the checkout (byte code, the
# tools' caches), which says nothing of what the page left behind.
_NOT_LEFT_BY_A_PAGE = re.compile(
    r"__pycache__|\.(pytest|mypy|ruff|hypothesis)_cache|^\S+\s+\.venv/"
)


def _leftovers() -> set[str]:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=matching", "--untracked-files=normal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {line for line in listed.stdout.splitlines() if not _NOT_LEFT_BY_A_PAGE.search(line)}


def environment(server: MarketmeterServer) -> dict[str, str]:
    venv_bin = str(ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETMETER_", "AWS_"))}
    return {
        **kept,
        "PATH": path,
        "MARKETMETER_ENDPOINT": server.endpoint,
        "MARKETMETER_DB": server.db,
    }


def run_page(page: str, server: MarketmeterServer) -> subprocess.CompletedProcess[str]:
    """Run the page's blocks in a session of their own, and end whatever they left running
    in the background (a page's emulator, say) when they are done, passed or failed."""
    with subprocess.Popen(
        ["bash", "-c", script(page, server.endpoint)],
        env=environment(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.e2e
@pytest.mark.parametrize("page", RUNNABLE)
def test_the_shell_blocks_of_a_page_run_as_written(page: str) -> None:
    options = _SERVE_OPTIONS.findall((ROOT / page).read_text("utf-8"))
    serve_options = tuple(" ".join(options).split())
    before = _leftovers()
    server = (
        MarketmeterServer(mode="subprocess", serve_options=serve_options)
        if serve_options
        else MarketmeterServer()
    )
    with server:
        run = run_page(page, server)
    assert run.returncode == 0, f"{page}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert _leftovers() == before, f"{page} left files in the checkout"
