"""Simulated time: a minute of the pipeline's time passes in a few real milliseconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """``scale`` real seconds per simulated second (``0.001``: an hour passes in 3.6 s)."""

    def __init__(self, scale: float = 0.001, *, epoch: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self._epoch = epoch or datetime.now(UTC)
        self._real_start = time.monotonic()
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._real_start) / self.scale

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self.seconds())

    def epoch_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def real_seconds(self, simulated: float) -> float:
        return max(0.0, float(simulated)) * self.scale

    def sleep(self, simulated: float) -> None:
        time.sleep(self.real_seconds(simulated))

    def call_later(self, simulated: float, action: Callable[[], None]) -> None:
        """Run ``action`` on its own thread once ``simulated`` seconds have passed."""
        timer = threading.Timer(self.real_seconds(simulated), action)
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def cancel_all(self) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
