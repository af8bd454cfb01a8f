"""Metrics kept in the one process that records them: ``prepare`` runs in ``marketmeter serve``
before anything imports prometheus-client (which reads ``PROMETHEUS_MULTIPROC_DIR`` once, when
it is imported) and takes that variable out of the environment.

Every call's metrics are recorded by one process: the single process, or under
``serve --workers N`` the coordinator, to which each worker sends the journal entry of every
call it answers (``cluster.link``) and which answers every scrape. prometheus-client's
multiprocess mode (a file per process, mapped into memory, the process id checked on every
increment) would only add its files and its cost; a directory left in the environment by
another program would also mix its counts in.
"""

from __future__ import annotations

import os

__all__ = ["MULTIPROC_ENV", "prepare"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> None:
    """prometheus-client in its single-process mode for this process and its children."""
    os.environ.pop(MULTIPROC_ENV, None)
