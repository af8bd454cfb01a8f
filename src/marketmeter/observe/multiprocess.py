"""Metrics shared by every process of one server: prometheus-client's multiprocess mode.

``prepare`` runs in ``marketmeter serve`` before anything imports prometheus-client (which
reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is imported): each process of the server then
keeps its counters in files of that directory, and a scrape, whichever process answers it,
sums them all. The directory is a new one per server, removed when the server exits: one
already set in the environment is not reused, since it may hold another server's counts (a
test process that ran ``serve`` in process leaves its directory in the environment every
server it starts next inherits: their scrapes added up). The server's own processes get the
new one through the environment they inherit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

__all__ = ["MULTIPROC_ENV", "prepare"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> str:
    """A new metrics directory for this server, set in the environment."""
    directory = tempfile.mkdtemp(prefix="marketmeter-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked worker: the server's own process
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory
