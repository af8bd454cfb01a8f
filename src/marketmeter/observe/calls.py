"""Each call the AWS endpoint answered, handed to every observer of it: the request journal,
the metrics and the call log (each a ``protocol.hooks.CallLog``), in that order (the journal
numbers the entry, which the log line then carries)."""

from __future__ import annotations

from marketmeter.protocol.hooks import CallLog, JournalEntry

__all__ = ["CallObservers"]


class CallObservers:
    """A ``CallLog`` telling each of ``observers`` that is enabled."""

    def __init__(self, *observers: CallLog) -> None:
        self._observers = [o for o in observers if o.enabled]

    @property
    def enabled(self) -> bool:
        return bool(self._observers)

    def record(self, entry: JournalEntry) -> None:
        for observer in self._observers:
            observer.record(entry)
