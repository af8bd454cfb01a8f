"""The write-ahead log's checkpoints off the writer's thread (store/sqlite_checkpoints.py):
under commits that never stop, the log still starts again from its beginning, so it stays
bounded; every committed row is in the database file once the log is copied; and a checkpoint
thread that cannot start hands the job back to SQLite's inline checkpoints."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from marketmeter.store.sqlite_checkpoints import Checkpoints
from marketmeter.store.sqlite_writer import SQLiteWriter

PAGE = 4096
FRAME = PAGE + 24  # a frame of the log: its header and one page
RESTART_PAGES = 40


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def _writer_connection(path: Path) -> sqlite3.Connection:
    connection = _connect(path)
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    return connection


def _insert(number: int) -> Callable[[sqlite3.Connection], sqlite3.Cursor]:
    return lambda connection: connection.execute(
        "INSERT INTO rows (n, filler) VALUES (?, ?)", (number, os.urandom(2 * PAGE))
    )


def test_the_log_stays_bounded_under_commits_that_never_stop(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with _connect(path) as setup:
        setup.execute("CREATE TABLE rows (n INTEGER PRIMARY KEY, filler BLOB)")
    setup.close()
    checkpoints = Checkpoints(lambda: _connect(path), restart_pages=RESTART_PAGES, period=0)
    writer = SQLiteWriter(lambda: _writer_connection(path), between_groups=checkpoints.after_group)
    commits = 400  # each writes 4 pages: 1,650 frames if the log never started again
    try:
        for number in range(commits):
            writer.submit(_insert(number)).result()  # one group each
        log_bytes = os.path.getsize(f"{path}-wal")  # as long as it ever was: never shrunk
    finally:
        writer.close()
        checkpoints.close()
    # never checkpointed, the 400 commits make a log of 1,650 frames; here it starts again
    # past 40 pages, a few commits later (more if the thread is slow to get a core)
    assert log_bytes <= 32 + 8 * RESTART_PAGES * FRAME, log_bytes
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*), sum(n) FROM rows").fetchone() == (
            commits,
            sum(range(commits)),
        )
    reader.close()


def test_without_its_thread_sqlite_checkpoints_inline_again(tmp_path: Path) -> None:
    path = tmp_path / "l.db"

    def cannot_connect() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    checkpoints = Checkpoints(cannot_connect, restart_pages=RESTART_PAGES)
    writer = SQLiteWriter(lambda: _writer_connection(path), between_groups=checkpoints.after_group)
    try:
        writer.submit(lambda connection: None).result()  # starts the thread, which gives up
        writer.submit(lambda connection: None).result()  # the first group's hook has run
        assert checkpoints._thread is not None
        checkpoints._thread.join(5)
        writer.submit(lambda connection: None).result()  # the writer learns it after a group
        pages = writer.submit(
            lambda connection: connection.execute("PRAGMA wal_autocheckpoint").fetchone()
        )
        assert pages.result() == (RESTART_PAGES,)
    finally:
        writer.close()
        checkpoints.close()


def test_the_thread_starts_at_the_first_commit_and_stops_at_close(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    checkpoints = Checkpoints(lambda: _connect(path))
    writer = SQLiteWriter(lambda: _writer_connection(path), between_groups=checkpoints.after_group)
    try:
        assert checkpoints._thread is None  # a store that only reads runs none
        writer.submit(lambda connection: None).result()
        writer.submit(lambda connection: None).result()  # the first group's hook has run
        assert checkpoints._thread is not None
        assert checkpoints._thread.is_alive()
    finally:
        writer.close()
        checkpoints.close()
    assert not checkpoints._thread.is_alive()


def test_a_failing_hook_between_groups_leaves_the_writer_running(tmp_path: Path) -> None:
    calls: list[int] = []

    def failing(connection: sqlite3.Connection) -> None:
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    writer = SQLiteWriter(lambda: _writer_connection(tmp_path / "l.db"), between_groups=failing)
    try:
        assert writer.submit(lambda connection: 1).result(5) == 1
        assert writer.submit(lambda connection: 2).result(5) == 2  # the thread is still there
        assert len(calls) >= 1
    finally:
        writer.close()
