"""How the suite shares out over pytest-xdist workers (``scripts/check`` runs ``-n N --dist
loadgroup``): which tests must run one after another on one worker.

- the tests marked ``timing`` (they assert tight wall-clock bounds: limits, slow clients,
  SIGTERM drain, the crash test's restarts) share one group, so that they run one after
  another on one worker; scripts/check goes further and runs them on their own, without
  xdist, beside ruff and mypy before the rest, since the other workers' load alone could
  break a bound;
- the tests of a module that share a module- or class-scoped fixture (a server started once
  for the module, say; the benchmark's ledger template, which also keeps its two wrk runs
  apart), or that reuse one server (``reused_server``, tests/e2e/conftest.py), share a group
  of that module, so that it is started only once;
- every other test runs wherever a worker is free; the biggest groups are handed out first.

xdist's own ``xdist_group`` marker cannot carry this on pytest >= 9.2: xdist renames a grouped
test's node id (``id@group``), and pytest 9.2 ignores the rename, so every group was silently
spread over all workers (each starting the module's server again). So the groups travel
another way: the controller gives each worker a directory (``pytest_configure_node``), a worker
writes the groups it computed at collection into it, and the controller's scheduler (a
``LoadScopeScheduling`` whose scope of a test is its group, or the test itself) reads them when
it splits the collection into work units. Without xdist (``-p no:xdist``) none of this runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_SCOPES = ("class", "module", "package")
_GROUPS_DIR = "marketmeter_groups_dir"


def group_of(item: pytest.Item) -> str | None:
    """The group ``item`` must share a worker with, or None when it can run anywhere."""
    if item.get_closest_marker("timing") is not None:
        return "timing"
    if item.get_closest_marker("reused_server") is not None or (
        isinstance(item, pytest.Function)
        and any(
            definition.scope in SHARED_SCOPES
            for definitions in item._fixtureinfo.name2fixturedefs.values()
            for definition in definitions
        )
    ):
        return item.nodeid.split("::", 1)[0]
    return None


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling (biggest work units first) with the workers' groups as scopes."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self._directory = Path(config.stash[_DIRECTORY_KEY])
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            written = sorted(self._directory.glob("*.json"))
            self._groups = json.loads(written[0].read_text()) if written else {}
        return self._groups.get(nodeid, nodeid)


_DIRECTORY_KEY = pytest.StashKey[str]()


def _is_grouping_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") == "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    if _is_grouping_controller(config):
        config.stash[_DIRECTORY_KEY] = tempfile.mkdtemp(prefix="marketmeter-xdist-groups-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _DIRECTORY_KEY in config.stash:
        shutil.rmtree(config.stash[_DIRECTORY_KEY], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    if _DIRECTORY_KEY in node.config.stash:
        node.workerinput[_GROUPS_DIR] = node.config.stash[_DIRECTORY_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> GroupScheduling | None:
    return GroupScheduling(config, log) if _DIRECTORY_KEY in config.stash else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: write the groups of this collection where the controller reads them."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    directory = workerinput.get(_GROUPS_DIR)
    if directory is None:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    worker = workerinput["workerid"]
    written = Path(directory) / f"{worker}.json"
    partial = written.with_suffix(".partial")
    partial.write_text(json.dumps(groups))
    os.replace(partial, written)
