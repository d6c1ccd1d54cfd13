"""Retries with jittered exponential backoff ("full jitter").

Edge links drop for seconds to minutes, and many devices may retry against the same API after
an outage; full jitter (a uniform delay between 0 and the exponential ceiling) spreads those
retries out instead of synchronising them. Sleep and the random source are injected so tests run
on a fake clock and assert the delays without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from media_upload.errors import RetryableError, UploadError

T = TypeVar("T")


def is_retryable_status(status: int) -> bool:
    """429 (throttled) and every 5xx are worth another attempt; other 4xx are final."""
    return status == 429 or 500 <= status <= 599


@dataclass
class Backoff:
    """How many attempts an operation gets and how long to wait between them."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # Every delay slept, newest last: tests read it; it stays small (one entry per retry).
    slept: list[float] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt ``attempt + 1`` (``attempt`` counts from 0).

        A server's ``Retry-After`` is a floor (capped, so a bogus value cannot stall a device).
        """
        ceiling = min(self.cap_s, self.base_s * (2**attempt))
        delay = self.rng.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_s))
        return delay

    def call(self, attempt_once: Callable[[], T], *, what: str) -> T:
        """``attempt_once()`` until it returns or raises something other than RetryableError.

        After the last attempt the failure becomes a transient UploadError naming ``what``.
        """
        for attempt in range(self.attempts):
            try:
                return attempt_once()
            except RetryableError as exc:
                if attempt == self.attempts - 1:
                    raise UploadError(
                        f"{what}: gave up after {self.attempts} attempts: {exc}", transient=True
                    ) from exc
                pause = self.delay(attempt, exc.retry_after)
                self.slept.append(pause)
                self.sleep(pause)
        raise AssertionError("unreachable: attempts must be >= 1")  # pragma: no cover
