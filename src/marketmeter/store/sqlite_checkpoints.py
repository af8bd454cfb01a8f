"""Checkpoints of the SQLite write-ahead log, off the writer's thread.

A checkpoint copies the pages the log holds into the database file and flushes that file.
Left to SQLite, one runs inside the commit that takes the log past ``wal_autocheckpoint``
pages, on the writer's thread: under load that commit took 25 to 40 ms about once a second, and
every request waiting for it waited that long (at 64 connections, the p99 was 45 ms where the
p90 was 13 ms; docs/performance.md). So the writer's connection never checkpoints
(``wal_autocheckpoint = 0``), and:

- **a thread**, on a connection of its own, runs a ``PASSIVE`` checkpoint after commits, at
  most one every ``period`` seconds. A passive checkpoint takes no lock the writer needs: the
  writer goes on committing while it copies.
- **the writer catches up** once the log is longer than ``restart_pages``: between two groups
  (their jobs answered already), it runs one passive checkpoint itself. Nothing is appended
  meanwhile, so it copies the few pages the thread has not yet, and the whole log is in the
  database. SQLite then starts the log again from its beginning at the next commit (it does
  once every frame is copied and no reader still reads the log's end), so the log stays
  bounded as with ``wal_autocheckpoint``. The thread waits meanwhile; if its last checkpoint
  was still running, or a reader held the last frames back, the writer tries again after the
  next group.

Durability is SQLite's: with ``synchronous=FULL`` a checkpoint flushes the log before it copies
and the database after, whichever connection runs it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["WAL_RESTART_PAGES", "Checkpoints"]

log = logging.getLogger(__name__)

# Pages of log past which the writer catches up (SQLite's own bound is 1,000). 10,000 pages
# (40 MiB) measured 4 % more requests than 1,000 when the writer still checkpointed inline.
WAL_RESTART_PAGES = 10_000

# The thread's pace: at most one checkpoint this often (seconds) while commits come.
CHECKPOINT_PERIOD = 0.05

_PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"


class Checkpoints:
    """The log's checkpoints for one database file; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        restart_pages: int = WAL_RESTART_PAGES,
        period: float = CHECKPOINT_PERIOD,
    ) -> None:
        self._connect = connect
        self.restart_pages = restart_pages
        self._period = period
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._long = False  # the thread saw the log past ``restart_pages``
        self._lost = False  # the thread could not connect: SQLite's inline checkpoints instead
        # started by the first commit: a store that only reads (a worker's) never runs it
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def after_group(self, connection: sqlite3.Connection) -> None:
        """The writer's, on its thread after each group: wakes the thread (started at the
        first), and catches up on ``connection`` (the writer's own) when the log is long."""
        if self._thread is None:
            with self._starting:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="marketmeter-checkpoints", daemon=True
                    )
                    self._thread.start()
        self._committed.set()
        if self._lost:
            self._lost = False
            connection.execute(f"PRAGMA wal_autocheckpoint = {self.restart_pages}")
        if not self._long:
            return
        try:
            busy, frames, copied = connection.execute(_PASSIVE).fetchone()
        except sqlite3.Error as error:
            log.warning("the writer's checkpoint failed (tried after the next group): %s", error)
            return
        if not busy and frames == copied:
            self._long = False

    def close(self) -> None:
        """Stop the thread (the last connection to close checkpoints what is left)."""
        with self._starting:
            self._stop.set()
        self._committed.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            connection = self._connect()
        except sqlite3.Error as error:
            log.error("no checkpoint thread: the writer checkpoints as it commits: %s", error)
            self._lost = True
            return
        try:
            while True:
                self._committed.wait()
                if self._stop.is_set():
                    return
                self._committed.clear()
                if self._long:
                    continue  # the writer's to catch up now: not to be kept busy by this one
                try:
                    frames = connection.execute(_PASSIVE).fetchone()[1]
                except sqlite3.Error as error:
                    log.warning("checkpoint failed (tried after the next commit): %s", error)
                else:
                    if frames >= self.restart_pages:
                        self._long = True
                if self._stop.wait(self._period):
                    return
        finally:
            connection.close()
