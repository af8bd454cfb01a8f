"""What the wire layer asks of the test bench, as interfaces: ``CallChecks`` (quota and fault
rules: what to do to a call before the rules see it) and ``CallLog`` (the request journal: what
the endpoint answered), with the values they exchange (``FaultDecision``, ``JournalEntry``).

The endpoint and the dispatch table depend only on these; ``testbench`` implements them, and the
app hands its ``BenchControls`` and ``Journal`` in. Without them a call is neither checked nor
journaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from marketmeter.errors import AwsError
from marketmeter.metering.types import Caller

__all__ = ["CallChecks", "CallLog", "FaultDecision", "JournalEntry"]


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one call: wait, then raise ``error``, hold back ``unprocessed`` records,
    or (GetEntitlements) answer an ``empty_page`` that still carries a NextToken."""

    label: str
    latency_seconds: float
    error: AwsError | None
    unprocessed: frozenset[int]
    empty_page: bool = False


@dataclass(slots=True)
class JournalEntry:
    """One answered call. ``time`` is the service clock's epoch seconds (what the rules saw);
    ``wall_time`` the machine's. ``id`` is given by the journal: 1, 2, 3, ... per process."""

    time: float
    wall_time: float
    request_id: str
    operation: str | None
    target: str | None
    access_key_id: str | None
    product_code: str | None
    request_body: bytes
    status: int
    error_type: str | None
    response_body: bytes
    verdicts: tuple[str, ...] = ()
    fault: str | None = None
    duration_ms: float = 0.0
    id: int = field(default=0)

    @property
    def size(self) -> int:
        return len(self.request_body) + len(self.response_body)


class CallChecks(Protocol):
    """Decides, for a parsed and validated call, whether the bench interferes."""

    def check(
        self, operation: str, product_code: str | None, caller: Caller, batch_size: int = 1
    ) -> FaultDecision | None: ...


class CallLog(Protocol):
    """Keeps the calls the endpoint answered."""

    @property
    def enabled(self) -> bool: ...

    def record(self, entry: JournalEntry) -> None: ...
