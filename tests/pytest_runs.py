"""The ``pytest`` command of the tests that run pytest in a directory of their own (the plugin's
tests, the testing guide's and the metering client page's code): pytest as a seller has it,
with marketmeter's plugin loaded by its entry point, and without this checkout's other pytest
plugins (schemathesis, hypothesis, xdist, anyio), which a seller's project need not have and
whose import was most of each run's start (about 1.6 s of CPU of 2.8)."""

from __future__ import annotations

import sys

__all__ = ["PYTEST"]

_OTHER_PLUGINS = ("schemathesis", "hypothesispytest", "xdist", "xdist.looponfail", "anyio")

PYTEST: tuple[str, ...] = (
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    *(option for name in _OTHER_PLUGINS for option in ("-p", f"no:{name}")),
)
