"""The Lambda's remaining time, as the one clock every long step of a run checks.

A hard Lambda timeout loses the run's output: assets committed before it would never reach the
state machine (and a retry would see them as already ingested), so the run must stop itself
first and return what it committed. Every step that can take long checks this budget before it
starts and while it runs: pulling the next hit, each HTTP attempt and back-off pause, each chunk
of a download. The figures below are chosen so that no step started within the budget can run
into the reserve:

* an HTTP attempt takes at most ``CONNECT_TIMEOUT_S + READ_TIMEOUT_S`` (one blocked read);
* ``RESERVE_S`` is what is left when a step gives up: one blocked read plus the time to abort a
  multipart upload, release a claim and return the report;
* a new candidate (a download) is only started with ``START_BUDGET_S`` left.

``time_left`` is the handler's ``context.get_remaining_time_in_millis() / 1000``; tests pass a
fake context, and ``None`` (benchmarks, direct calls) means "no deadline".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
ATTEMPT_S = CONNECT_TIMEOUT_S + READ_TIMEOUT_S
RESERVE_S = READ_TIMEOUT_S + 15.0
START_BUDGET_S = 120.0


@dataclass(frozen=True)
class TimeBudget:
    time_left: Callable[[], float] | None = None
    reserve_s: float = RESERVE_S

    def left(self) -> float:
        """Seconds until the Lambda is stopped (infinite without a deadline)."""
        return math.inf if self.time_left is None else max(0.0, float(self.time_left()))

    def allows(self, seconds: float) -> bool:
        """True when a step of ``seconds`` can still run and leave the reserve."""
        return self.left() - self.reserve_s >= seconds

    def spent(self) -> bool:
        """True once only the reserve is left: a running step must give up now."""
        return self.left() < self.reserve_s


NO_DEADLINE = TimeBudget()
