"""Running the ``marketmeter`` command as a user would, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["mm"]


def mm(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m marketmeter ARGS`` in ``cwd``; never reads a stray $MARKETMETER_DB."""
    environment = {k: v for k, v in os.environ.items() if k != "MARKETMETER_DB"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "marketmeter", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
