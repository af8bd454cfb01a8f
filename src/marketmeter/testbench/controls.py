"""The test bench's controls of one server: fault rules, the quota profile and the journal.

``BenchControls.check`` runs on every AWS call once it is parsed and validated, before the
rules: the quota profile first (a call over the account's rate is a ``ThrottlingException``),
then the fault rules. It answers what to do to the call — wait, fail, hold records back — or
``None`` for a normal call. Everything here belongs to one process and starts off (no fault,
no quota unless ``serve --quota aws``); ``reset`` puts it back the way the server started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from marketmeter.errors import ThrottlingException
from marketmeter.metering.types import Caller
from marketmeter.testbench.faults import FaultDecision, FaultInjector
from marketmeter.testbench.journal import Journal
from marketmeter.testbench.quotas import QuotaLimiter

__all__ = ["BenchControls", "QuotaProfile"]


@dataclass(frozen=True, slots=True)
class QuotaProfile:
    """A quota setting: ``off``, ``aws`` (AWS's published rates) or ``custom`` rates."""

    profile: str = "off"
    rates: Mapping[str, float] | None = None


@dataclass(slots=True)
class BenchControls:
    faults: FaultInjector = field(default_factory=FaultInjector)
    quotas: QuotaLimiter = field(default_factory=QuotaLimiter)
    journal: Journal = field(default_factory=Journal)
    startup_quota: QuotaProfile = field(default_factory=QuotaProfile)

    def __post_init__(self) -> None:
        self.quotas.configure(self.startup_quota.profile, self.startup_quota.rates)

    @property
    def idle(self) -> bool:
        """Whether ``check`` answers None to every call now (no quota, no fault, no latency)."""
        return self.quotas.off and self.faults.idle

    def check(
        self, operation: str, product_code: str | None, caller: Caller, batch_size: int = 1
    ) -> FaultDecision | None:
        """What the bench does to this call, if anything."""
        account = caller.account_id or caller.access_key_id or "anonymous"
        if caller.region is not None:  # AWS's quotas are per account and region
            account = f"{account} in {caller.region}"
        if not self.quotas.admit(operation, account):
            return FaultDecision(
                label=f"quota: {operation} over its rate for {account}",
                latency_seconds=0.0,
                error=ThrottlingException("Rate exceeded"),
                unprocessed=frozenset(),
            )
        return self.faults.decide(
            operation, product_code, caller.access_key_id, caller.region, batch_size
        )

    def reset(self, faults: bool = True, journal: bool = True) -> None:
        """Back to how the server started: no fault rule (ids from 1 again), no added latency,
        the start-up quota profile; an empty journal (ids from 1 again)."""
        if faults:
            self.faults.reset()
            self.quotas.configure(self.startup_quota.profile, self.startup_quota.rates)
        if journal:
            self.journal.reset()
