"""What ``serve`` sets up in its own process before it serves (``server.prepared``): run in a
process of its own, since it configures the process (logging, open-files limit, collector)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import gc
from marketmeter.config import Settings
from marketmeter.server import prepared
before = gc.get_threshold()
prepared(Settings())
print(before, gc.get_threshold())
"""


def test_a_serving_process_runs_full_collections_rarely() -> None:
    printed = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    assert printed.split("\n")[-2] == "(700, 10, 10) (50000, 20, 100)"
