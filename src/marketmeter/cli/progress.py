"""The progress bar of the commands that can run long (``usage export``, ``db copy``): click's,
on stderr, drawn only when stderr is a terminal, so that piped output and scripts' logs stay
clean. ``MARKETMETER_PROGRESS=1`` draws it anyway (``0`` never)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import click

__all__ = ["Progress", "progress"]


class Progress(Protocol):
    def update(self, n_steps: int) -> None: ...


class _Silent:
    def update(self, n_steps: int) -> None:
        return None


def _forced() -> bool | None:
    forced = os.environ.get("MARKETMETER_PROGRESS")
    return None if forced not in ("0", "1") else forced == "1"


@contextmanager
def progress(length: int, label: str) -> Iterator[Progress]:
    """A bar of ``length`` steps labelled ``label``; ``update(n)`` moves it."""
    forced = _forced()
    if not (sys.stderr.isatty() if forced is None else forced):
        yield _Silent()
        return
    bar = click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True, width=30)
    bar._is_atty = True  # drawn even off a terminal when forced
    with bar:
        yield bar
