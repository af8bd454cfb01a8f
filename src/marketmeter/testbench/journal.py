"""The request journal: every call the AWS endpoint answered, kept in memory and bounded.

The endpoint records each exchange as it answers it (``Journal.record``): the operation, who
called, the request and response bodies exactly as they crossed the wire, the status, the
verdict of every record, and the fault the test bench injected, if any. Sellers read it back
through ``GET /_marketmeter/journal`` and ``marketmeter journal`` to see what their code sent
and what it was told.

Bodies are kept as bytes and decoded only when read, so recording costs the endpoint a few
microseconds. The journal holds at most ``max_entries`` entries and ``max_bytes`` of bodies;
the oldest go first. It belongs to one server process (each node of a PostgreSQL deployment
has its own) and is emptied by a reset.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from marketmeter.config import DEFAULT_JOURNAL_BYTES, DEFAULT_JOURNAL_ENTRIES
from marketmeter.protocol.hooks import JournalEntry

__all__ = [
    "Journal",
    "JournalEntry",
    "JournalQuery",
]


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """Filters on the journal; times are service-clock epoch seconds (``until`` exclusive).

    With ``after``, the first ``limit`` matching entries whose id is greater (to page forward or
    follow the journal); without it, the newest ``limit`` matching entries. Oldest first.
    """

    operation: str | None = None
    product_code: str | None = None
    access_key_id: str | None = None
    status: int | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None
    after: int | None = None
    limit: int = 100

    def matches(self, entry: JournalEntry) -> bool:
        return (
            (self.operation is None or entry.operation == self.operation)
            and (self.product_code is None or entry.product_code == self.product_code)
            and (self.access_key_id is None or entry.access_key_id == self.access_key_id)
            and (self.status is None or entry.status == self.status)
            and (self.error_type is None or entry.error_type == self.error_type)
            and (self.since is None or entry.time >= self.since)
            and (self.until is None or entry.time < self.until)
            and (self.after is None or entry.id > self.after)
        )


class Journal:
    """A thread-safe ring of ``JournalEntry``, bounded by count and by body bytes."""

    def __init__(
        self, max_entries: int = DEFAULT_JOURNAL_ENTRIES, max_bytes: int = DEFAULT_JOURNAL_BYTES
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("journal bounds must not be negative")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[JournalEntry] = deque()
        self._bytes = 0
        self._next_id = 1
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def record(self, entry: JournalEntry) -> None:
        """Keep ``entry`` (its ``id`` is set here), dropping the oldest beyond the bounds. An
        entry larger than ``max_bytes`` on its own is kept without its bodies."""
        if not self.enabled:
            return
        if entry.size > self.max_bytes:
            entry.request_body = b""
            entry.response_body = b""
        with self._lock:
            entry.id = self._next_id
            self._next_id += 1
            self._entries.append(entry)
            self._bytes += entry.size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= self._entries.popleft().size
                self._dropped += 1

    def query(self, query: JournalQuery) -> list[JournalEntry]:
        with self._lock:
            entries = list(self._entries)
        if query.after is not None:
            found: list[JournalEntry] = []
            for entry in entries:
                if query.matches(entry):
                    found.append(entry)
                    if len(found) == query.limit:
                        break
            return found
        newest: list[JournalEntry] = []
        for entry in reversed(entries):
            if query.matches(entry):
                newest.append(entry)
                if len(newest) == query.limit:
                    break
        newest.reverse()
        return newest

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def reset(self) -> None:
        """As new: empty, ids from 1 again, nothing counted as dropped."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._next_id = 1
            self._dropped = 0

    def stats(self) -> dict[str, int]:
        """How full the journal is: entries, bytes, the bounds, and how many were dropped."""
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "maxEntries": self.max_entries,
                "maxBytes": self.max_bytes,
                "dropped": self._dropped,
                "lastId": self._next_id - 1,
            }
