"""Simulated time: a minute of the pipeline's time passes in a few real milliseconds.

Real work done on this machine (a stand-in transcoding or decoding video, a handler running) is
not part of the pipeline's time: while any of it runs inside ``paused()``, the simulated clock
stands still. Otherwise one real second of PyAV encoding would be half an hour of simulated
MediaConvert time at the default scale, and every figure taken from the clock (job durations,
time to labels, how often the heartbeat sweep ran) would measure this machine instead of the
model of the services. Timers and sleeps are therefore driven by one scheduler thread that
watches simulated time, not by real-time ``threading.Timer``s.

A stall of this machine is not pipeline time either. Everything that waits on the clock looks
at it at least every 50 ms (sleepers, the scheduler every few ms while timers are due), so a
longer gap between two looks means the process was not running: descheduled on a loaded CI
machine, a long garbage collection, a Chromium next door taking both cores. At the default
scale one real second is over half an hour of simulated time, enough to time out a task whose
heartbeat the sweep would have sent had it been scheduled. So a gap longer than ``MAX_GAP_S``
counts as ``MAX_GAP_S`` and the rest stands still, as a pause does.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

# How often (real seconds) sleepers and the scheduler look at the clock at most.
_TICK_S = 0.002
# The longest real gap between two looks at the clock that still counts in full (see above).
MAX_GAP_S = 0.2


class SimClock:
    """``scale`` real seconds per simulated second (``0.001``: an hour passes in 3.6 s)."""

    def __init__(self, scale: float = 0.001, *, epoch: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self._epoch = epoch or datetime.now(UTC)
        self._lock = threading.Condition()
        self._sim_base = 0.0  # simulated seconds at _real_base
        self._real_base = time.monotonic()
        self._paused = 0
        self._last_look = self._real_base
        # Wall-clock (time.time) start of the clock and of every pause, to read timestamps that
        # others took on the wall clock (execution history) as simulated time.
        self._wall_start = time.time()
        self._pause_wall_start = 0.0
        self._pauses: list[tuple[float, float]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._closed = False
        self._scheduler: threading.Thread | None = None

    # -- reading the clock ------------------------------------------------------------------------
    def seconds(self) -> float:
        """Simulated seconds since the clock started."""
        with self._lock:
            return self._seconds()

    def _seconds(self) -> float:
        if self._paused:
            return self._sim_base
        now = time.monotonic()
        stalled = now - max(self._last_look, self._real_base) - MAX_GAP_S
        if stalled > 0:
            # The process was not running: that time stands still, as a pause does.
            self._real_base += stalled
            wall = time.time()
            self._pauses.append((wall - stalled, wall))
        self._last_look = now
        return self._sim_base + (now - self._real_base) / self.scale

    def now(self) -> datetime:
        return self.datetime_at(self.seconds())

    def datetime_at(self, simulated: float) -> datetime:
        """The date and time at ``simulated`` seconds: one read of the clock gives both."""
        return self._epoch + timedelta(seconds=simulated)

    def epoch_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def real_seconds(self, simulated: float) -> float:
        return max(0.0, float(simulated)) * self.scale

    # -- real work outside simulated time ---------------------------------------------------------
    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Simulated time stands still while the body runs (nested and threaded uses add up)."""
        with self._lock:
            if self._paused == 0:
                self._sim_base = self._seconds()
                self._pause_wall_start = time.time()
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1
                if self._paused == 0:
                    self._real_base = time.monotonic()
                    self._pauses.append((self._pause_wall_start, time.time()))
                self._lock.notify_all()

    def simulated_at(self, at: datetime) -> float:
        """Simulated seconds at a wall-clock moment (an execution history event's timestamp)."""
        wall = at.timestamp()
        with self._lock:
            pauses = list(self._pauses)
            if self._paused:
                pauses.append((self._pause_wall_start, max(wall, self._pause_wall_start)))
        stood_still = sum(max(0.0, min(end, wall) - start) for start, end in pauses if start < wall)
        return max(0.0, wall - self._wall_start - stood_still) / self.scale

    # -- waiting ----------------------------------------------------------------------------------
    def sleep(self, simulated: float) -> None:
        """Block until ``simulated`` seconds of simulated time have passed."""
        self.wait_until(self.seconds() + max(0.0, float(simulated)))

    def wait_until(self, target: float, event: threading.Event | None = None) -> bool:
        """Block until simulated ``target``; True early if ``event`` is set meanwhile."""
        while True:
            remaining = target - self.seconds()
            if remaining <= 0:
                return False
            step = min(max(self.real_seconds(remaining), _TICK_S / 4), 0.05)
            if event is not None:
                if event.wait(step):
                    return True
            else:
                time.sleep(step)

    def call_later(self, simulated: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the scheduler thread once ``simulated`` seconds have passed."""
        with self._lock:
            if self._closed:
                return
            due = self._seconds() + max(0.0, float(simulated))
            heapq.heappush(self._timers, (due, next(self._order), action))
            if self._scheduler is None:
                self._scheduler = threading.Thread(
                    target=self._run_timers, name="sim-clock", daemon=True
                )
                self._scheduler.start()
            self._lock.notify_all()

    def _run_timers(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                timers = self._timers
                if timers and timers[0][0] <= self._seconds():
                    _at, _n, action = heapq.heappop(timers)
                else:
                    wait = _TICK_S * 5
                    if timers and not self._paused:
                        wait = min(wait, self.real_seconds(timers[0][0] - self._seconds()))
                    self._lock.wait(max(wait, _TICK_S / 4))
                    continue
            # Each action runs on its own thread: a job finishing must not hold up the others.
            threading.Thread(target=action, name="sim-timer", daemon=True).start()

    def cancel_all(self) -> None:
        with self._lock:
            self._closed = True
            self._timers.clear()
            self._lock.notify_all()
