"""Metrics shared by every process of one server: prometheus-client's multiprocess mode.

``prepare`` runs in ``marketmeter serve`` before anything imports prometheus-client (which
reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is imported): each process of the server then
keeps its counters in files of that directory, and a scrape, whichever process answers it,
sums them all. The directory is a new one per server (its files would otherwise add up
across runs), removed when the server exits; a directory already set in the environment (by
the server's own parent process, or by whoever runs it) is kept as it is.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

__all__ = ["MULTIPROC_ENV", "prepare"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> str:
    """The metrics directory of this server, made (and set in the environment) if none is."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        return given
    directory = tempfile.mkdtemp(prefix="marketmeter-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked worker: the server's own process
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory
