"""The client's public API is pinned, and the package stands alone: it imports only the
standard library, boto3/botocore and click (its CLI), never the rest of marketmeter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import marketmeter.client

PACKAGE = Path(marketmeter.client.__file__).parent
ALLOWED = {"boto3", "botocore", "click"}


def test_the_public_api() -> None:
    assert marketmeter.client.__all__ == [
        "MAX_BATCH",
        "WINDOW",
        "Allocation",
        "Backoff",
        "Customer",
        "FlushResult",
        "MeteringClient",
        "Mode",
        "RateLimiter",
        "RecordState",
        "SpoolError",
        "SpoolRecord",
        "Status",
        "StatusRow",
        "make_aws_client",
    ]
    for name in marketmeter.client.__all__:
        assert getattr(marketmeter.client, name) is not None


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            found.add(node.module or "")
    return found


def test_only_the_standard_library_and_boto3() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert [f.name for f in files] == [
        "__init__.py",
        "cli.py",
        "meter.py",
        "model.py",
        "pacing.py",
        "sender.py",
        "spool.py",
    ]
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top == "marketmeter":
                assert module.startswith("marketmeter.client."), f"{path.name}: {module}"
            else:
                assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name}: {module}"


def test_importing_it_loads_nothing_else_of_marketmeter() -> None:
    code = (
        "import sys, marketmeter.client, marketmeter.client.cli;"
        "print(sorted(m for m in sys.modules if m.startswith('marketmeter')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(run.stdout)
    assert [m for m in loaded if not m.startswith("marketmeter.client")] == ["marketmeter"]
