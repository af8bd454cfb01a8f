"""The catalog's version, shared by every process of one SQLite ledger without a query.

A small file next to the database (``<db>-catalog``, created with the database file's mode, as
SQLite creates ``-wal`` and ``-shm``) holds the version of the
committed catalog as 8 bytes, mapped into memory by every process that opens the ledger. A
request reads it from memory (no SQL, no system call) and reloads its catalog snapshot only
when it moved. Whoever commits a catalog change publishes the new version: the SQLite writer
thread reads ``catalog_state.version`` after each commit (``SQLiteStore``) and, when it moved,
writes it here under an exclusive ``flock``, re-reading it inside the lock so that two
processes publishing at once leave the later commit's version. The stamp is written after the
commit, so a reader that sees a version finds that catalog in the database; a change is seen
by every process's very next request once the call that made it has returned.

A database that is not a plain file (``:memory:``, ``file:`` URIs) has no stamp: its store
reads the version with a query, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from collections.abc import Callable

__all__ = ["CatalogStamp", "stamp_path"]

_FORMAT = struct.Struct("<q")
_PRIVATE = 0o600


def stamp_path(database: str) -> str | None:
    """Where the stamp of the SQLite database at ``database`` lives, or None if it has none."""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database + "-catalog"


class CatalogStamp:
    """One process's mapping of the stamp file."""

    def __init__(self, path: str, mode: int = _PRIVATE) -> None:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        try:
            if os.fstat(descriptor).st_mode & 0o777 != mode & 0o777:
                with contextlib.suppress(OSError):  # made now (umask), or someone else's
                    os.fchmod(descriptor, mode)
            if os.fstat(descriptor).st_size < _FORMAT.size:
                os.ftruncate(descriptor, _FORMAT.size)
            self._map = mmap.mmap(descriptor, _FORMAT.size)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor

    def read(self) -> int:
        """The last published version."""
        value: int = _FORMAT.unpack_from(self._map)[0]
        return value

    def publish(self, current: Callable[[], int]) -> None:
        """Write ``current()`` (the committed version, read again inside the lock) if it
        differs from the stamp's."""
        if current() == self.read():
            return
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        try:
            _FORMAT.pack_into(self._map, 0, current())
        finally:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._descriptor)
