"""The simulated clock: real work inside ``paused()`` takes no simulated time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from localworld.clock import MAX_GAP_S, SimClock


def test_time_stands_still_while_real_work_runs() -> None:
    # Given a clock at 1 ms per simulated second
    clock = SimClock(0.001)
    before = clock.seconds()
    # When 50 ms of real work runs inside paused()
    with clock.paused():
        time.sleep(0.05)
        during = clock.seconds()
    # Then no simulated time passed during it (50 simulated seconds otherwise)
    assert during - before < 20
    # and time moves again afterwards
    time.sleep(0.02)
    assert clock.seconds() - during >= 15


def test_a_timer_waits_for_simulated_time_not_wall_time() -> None:
    # Given a timer due in 30 simulated seconds (30 ms of real time)
    clock = SimClock(0.001)
    fired = threading.Event()
    clock.call_later(30, fired.set)
    # When 100 ms of real work keeps the clock paused
    with clock.paused():
        time.sleep(0.1)
        # Then the timer has not fired: no simulated time has passed
        assert not fired.is_set()
    # and it fires once simulated time reaches it
    assert fired.wait(1.0)
    clock.cancel_all()


def test_wall_clock_timestamps_read_as_simulated_time_without_the_pauses() -> None:
    clock = SimClock(0.001)
    start = datetime.now(UTC)
    time.sleep(0.02)
    with clock.paused():
        time.sleep(0.1)
    time.sleep(0.02)
    end = datetime.now(UTC)
    # 40 ms of running time is 40 simulated seconds; the 100 ms pause does not count
    elapsed = clock.simulated_at(end) - clock.simulated_at(start)
    assert 40 <= elapsed < 120  # it would be 140 or more if the pause counted


def test_a_clock_needs_a_positive_scale() -> None:
    with pytest.raises(ValueError, match="scale must be positive"):
        SimClock(0)


def test_a_stall_of_the_machine_counts_as_at_most_the_longest_gap() -> None:
    # Given a clock at 1 ms per simulated second that someone looks at every 20 ms
    clock = SimClock(0.001)
    start = clock.seconds()
    for _ in range(10):
        time.sleep(0.02)
        clock.seconds()
    # Then the 200 ms of looks passed in full (about 200 simulated seconds)
    looked = clock.seconds() - start
    assert 190 <= looked < 400
    # When the process does not run for a second (nobody can look: a stalled machine)
    time.sleep(1.0)
    stalled = clock.seconds() - start - looked
    # Then that second counts as MAX_GAP_S, not as 1,000 simulated seconds
    assert MAX_GAP_S * 1000 - 1 <= stalled < MAX_GAP_S * 1000 + 100
    # and wall-clock timestamps across the stall read the same way
    assert clock.simulated_at(datetime.now(UTC)) < (looked + stalled + 100)
