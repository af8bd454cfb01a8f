"""AWS's per-account request rates, enforced on demand: a token bucket per operation and account.

AWS publishes these rates for the Metering Service: BatchMeterUsage and MeterUsage 10 per second,
RegisterUsage 5 per second; ResolveCustomer has no published figure (unlimited unless a custom
rate is given). Off by default; the admin API switches to the ``aws`` profile or ``custom``
rates, and the endpoint answers ``ThrottlingException("Rate exceeded")`` when ``admit`` refuses.

Memory is bounded whatever the callers: in open mode any access key id is a caller, so a client
inventing ids must not grow the buckets for ever. A full bucket decides exactly as no bucket
(a new one starts full), so buckets that have refilled are dropped, oldest used first, a few at
each new caller; and at most ``max_buckets`` are kept: past it the least recently used goes
(only a caller idle while ``max_buckets`` others called within its refill time, at most one
second, could then be admitted once more than AWS would).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from marketmeter.refusal import Refusal
from marketmeter.servicemodel.spec import operation_names

__all__ = ["AWS_RATES", "MAX_BUCKETS", "PROFILES", "QuotaLimiter"]

AWS_RATES: Mapping[str, float] = MappingProxyType(
    {"BatchMeterUsage": 10.0, "MeterUsage": 10.0, "RegisterUsage": 5.0}
)
PROFILES = ("off", "aws", "custom")
_OPERATIONS = operation_names()
# Refill is computed in floating point: 0.1 s at 10/s must give one whole token.
_WHOLE_TOKEN = 1 - 1e-9
# Buckets kept at most (about 200 bytes each); AWS's own callers are a handful of accounts.
MAX_BUCKETS = 10_000
# Refilled buckets dropped, oldest first, per new bucket: amortized, never a full sweep.
_SWEEP = 2


@dataclass(slots=True)
class _Bucket:
    tokens: float
    refilled_at: float


class QuotaLimiter:
    """Token buckets per (operation, account): one second of burst (at least 1), refilled at
    ``rate`` per second on the injected ``monotonic`` clock. Thread-safe."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS
    ) -> None:
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, got {max_buckets}")
        self._monotonic = monotonic
        self._max_buckets = max_buckets
        self._lock = threading.Lock()
        self._profile = "off"
        self._rates: dict[str, float] = {}
        # least recently used first
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def configure(self, profile: str, rates: Mapping[str, float] | None = None) -> None:
        """``off``; ``aws`` (AWS_RATES, ``rates`` overriding per operation); or ``custom``
        (only ``rates``). Buckets start full again."""
        if profile not in PROFILES:
            raise Refusal("profile", f"must be one of {', '.join(PROFILES)}")
        if rates is not None and not isinstance(rates, Mapping):
            raise Refusal("rates", "must be an object of operation name to calls per second")
        if profile == "off" and rates:
            raise Refusal("rates", 'the "off" profile takes no rates')
        if profile == "custom" and not rates:
            raise Refusal("rates", 'the "custom" profile needs at least one rate')
        chosen = dict(AWS_RATES) if profile == "aws" else {}
        chosen.update(_checked(rates or {}))
        with self._lock:
            self._profile = profile
            self._rates = {name: chosen[name] for name in _OPERATIONS if name in chosen}
            self._buckets = OrderedDict()

    @property
    def off(self) -> bool:
        """No rate configured: ``admit`` admits every call."""
        return not self._rates

    def bucket_count(self) -> int:
        """Buckets held now (at most ``max_buckets``)."""
        with self._lock:
            return len(self._buckets)

    def state_json(self) -> dict[str, object]:
        with self._lock:
            return {"profile": self._profile, "rates": dict(self._rates)}

    def admit(self, operation: str, account: str) -> bool:
        """Take a token for one call of ``operation`` by ``account``; False means throttle."""
        if not self._rates:
            return True
        with self._lock:
            rate = self._rates.get(operation)
            if rate is None:
                return True
            now = self._monotonic()
            key = (operation, account)
            bucket = self._buckets.get(key)
            capacity = max(rate, 1.0)
            if bucket is None:
                self._forget_refilled(now)
                if len(self._buckets) >= self._max_buckets:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[key] = _Bucket(capacity, now)
            else:
                self._buckets.move_to_end(key)
            elapsed = max(now - bucket.refilled_at, 0.0)
            bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
            bucket.refilled_at = now
            if bucket.tokens < _WHOLE_TOKEN:
                return False
            bucket.tokens -= 1
            return True

    def _forget_refilled(self, now: float) -> None:
        """Drop up to ``_SWEEP`` of the least recently used buckets that are full again."""
        for _ in range(_SWEEP):
            if not self._buckets:
                return
            (operation, _account), oldest = next(iter(self._buckets.items()))
            rate = self._rates.get(operation)
            capacity = max(rate or 1.0, 1.0)
            refilled = oldest.tokens + max(now - oldest.refilled_at, 0.0) * (rate or math.inf)
            if refilled < capacity:
                return
            self._buckets.popitem(last=False)


def _checked(rates: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, rate in rates.items():
        if name not in _OPERATIONS:
            raise Refusal(f"rates.{name}", f"unknown operation; one of {', '.join(_OPERATIONS)}")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise Refusal(f"rates.{name}", "must be a number")
        if not math.isfinite(rate) or rate <= 0:
            raise Refusal(f"rates.{name}", "must be a finite number greater than 0")
        checked[name] = float(rate)
    return checked
