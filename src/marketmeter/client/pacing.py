"""Pacing calls to AWS: a rate limit (AWS's quota is 10 calls per second per account) and
exponential backoff with full jitter for throttling and server errors.

Both take the clock and ``sleep`` they run on, so tests can drive them without waiting.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "RateLimiter"]


class RateLimiter:
    """At most ``rate`` calls per second on average, in bursts of at most ``burst`` (a token
    bucket), shared by every thread that uses it."""

    def __init__(
        self,
        rate: float = 10.0,
        burst: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = burst
        self._last = monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until a call may go."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


@dataclass(frozen=True)
class Backoff:
    """AWS's "full jitter": before retry ``n`` (0-based), sleep a uniform draw from
    ``[0, min(cap, base * 2**n)]``; give up after ``max_attempts`` calls."""

    base: float = 0.1
    cap: float = 20.0
    max_attempts: int = 8

    def delay(self, attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        return draw(0.0, min(self.cap, self.base * 2**attempt))
