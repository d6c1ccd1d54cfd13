"""A token bucket that bounds upload bandwidth (``--max-rate``).

Edge uplinks are often shared with the camera's own traffic, so the uploader must be able to
stay under a set rate over any interval, not only on average. The bucket holds at most
``burst`` bytes of credit and refills at ``rate`` bytes per second; taking more than the credit
puts the bucket in debt and sleeps until the debt is repaid. Over any interval of ``t`` seconds
at most ``burst + rate * t`` bytes pass, whatever the read sizes. The clock and sleep are
injected so tests measure the bound on a fake clock instead of asserting on wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``consume(n)`` before sending ``n`` bytes; it returns when they may be sent."""

    def __init__(
        self,
        rate_bytes_per_s: float,
        *,
        burst_bytes: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_bytes_per_s <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate_bytes_per_s)
        # A quarter of a second of credit: smooth enough for TCP, small enough to bound bursts.
        self.burst = float(
            burst_bytes if burst_bytes is not None else max(64 * 1024, rate_bytes_per_s / 4)
        )
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, amount: int) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.rate)
