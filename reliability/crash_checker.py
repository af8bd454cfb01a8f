"""The crash test's checker: what the clients were told against what the ledger holds.

A record's key is what the clients can compute and the ledger's row shows:
``(customer_account, dimension, hour, instance)`` — ``instance`` is ``""`` for
BatchMeterUsage; for MeterUsage it is the session token that names the instance. Per product
and operation it is the ledger's dedupe key (docs/batch-meter-usage.md, docs/meter-usage.md).

Violations, each a line of text:

- ``lost``: an acknowledged Success without a row in the ledger;
- ``changed id``: the row's MeteringRecordId is not the acknowledged one;
- ``id changed on retry``: two acknowledgements of one key named different ids;
- ``billed twice``: two rows share a dedupe key (or a MeteringRecordId);
- ``never sent``: a row no client ever sent;
- ``quantity``: a row's quantity is not the one sent;
- ``refused``: a client's request was answered with an error that is not a crash's;
- ``integrity``: the database's own check failed;
- ``slow restart``: the server answered again later than the limit after a restart.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reliability.crash_ledger import LedgerRow

__all__ = ["Acknowledgements", "RecordKey", "Verdict", "check", "key_of_row"]

RecordKey = tuple[str, str, int, str]
"""(customer_account, dimension, hour, instance or "")."""


def key_of_row(row: LedgerRow) -> RecordKey:
    instance = (row.instance or "") if row.operation == "MeterUsage" else ""
    return (row.customer_account, row.dimension, row.hour, instance)


@dataclass
class Acknowledgements:
    """What the clients sent and were told, shared by their threads."""

    sent: dict[RecordKey, int] = field(default_factory=dict)  # key → quantity in millionths
    acked: dict[RecordKey, str] = field(default_factory=dict)  # key → MeteringRecordId
    conflicts: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note_sent(self, keys: Iterable[tuple[RecordKey, int]]) -> None:
        with self._lock:
            for key, micros in keys:
                self.sent[key] = micros

    def acknowledge(self, key: RecordKey, record_id: str) -> None:
        """A Success naming ``record_id`` for ``key``; a second one must name the same id."""
        with self._lock:
            first = self.acked.setdefault(key, record_id)
            if first != record_id:
                self.conflicts.append(f"id changed on retry: {key} got {first}, then {record_id}")

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.refusals.append(f"refused: {reason}")


@dataclass(frozen=True, slots=True)
class Verdict:
    violations: tuple[str, ...]
    acknowledged: int
    rows: int

    @property
    def ok(self) -> bool:
        return not self.violations


def check(
    acks: Acknowledgements,
    rows: Sequence[LedgerRow],
    integrity: Sequence[str],
    restart_seconds: Sequence[float],
    restart_limit: float = 2.0,
) -> Verdict:
    """Every violation of the crash test's guarantees (see the module docstring)."""
    violations: list[str] = list(acks.conflicts) + list(acks.refusals)
    by_key: dict[RecordKey, list[LedgerRow]] = {}
    for row in rows:
        by_key.setdefault(key_of_row(row), []).append(row)
    for key, record_id in sorted(acks.acked.items()):
        found = by_key.get(key, [])
        if not found:
            violations.append(f"lost: {key} acknowledged as {record_id}, not in the ledger")
        elif found[0].metering_record_id != record_id:
            stored = found[0].metering_record_id
            violations.append(f"changed id: {key} acknowledged {record_id}, stored {stored}")
    dedupe = Counter(row.dedupe_key for row in rows)
    violations += [f"billed twice: {key} has {n} rows" for key, n in dedupe.items() if n > 1]
    ids = Counter(row.metering_record_id for row in rows)
    violations += [f"billed twice: id {i} on {n} rows" for i, n in ids.items() if n > 1]
    for key, found in sorted(by_key.items()):
        if key not in acks.sent:
            violations.append(f"never sent: {key} is billed ({len(found)} rows)")
        elif any(row.quantity_micros != acks.sent[key] for row in found):
            violations.append(f"quantity: {key} was sent as {acks.sent[key]} micros")
    violations += [f"integrity: {problem}" for problem in integrity]
    violations += [
        f"slow restart: #{n} served again after {seconds:.3f} s (limit {restart_limit} s)"
        for n, seconds in enumerate(restart_seconds, start=1)
        if seconds > restart_limit
    ]
    return Verdict(tuple(violations), len(acks.acked), len(rows))
