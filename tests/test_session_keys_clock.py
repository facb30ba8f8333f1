"""The fake clock that Pattern 2's tests and notebook (and later patterns) drive time with."""

from __future__ import annotations

import math
import time

import pytest

from patterns.clock import AdvancingClock, FakeClock, monotonic


def test_starts_where_told_and_only_moves_forward() -> None:
    clock = FakeClock(start=100.0)
    assert clock() == clock.now == 100.0
    assert clock.advance(2.5) == 102.5
    assert clock.advance(0) == 102.5
    assert clock.advance_to(50.0) == 102.5  # never backwards
    assert clock.advance_to(200.0) == 200.0
    assert repr(clock) == "FakeClock(now=200)"
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="forward"):
            clock.advance(bad)
    with pytest.raises(ValueError, match="finite"):
        FakeClock(start=math.nan)


def test_timers_run_in_order_each_at_its_own_time() -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []
    clock.call_later(30, lambda: seen.append(("b", clock())))
    clock.call_later(10, lambda: seen.append(("a", clock())))
    clock.call_later(30, lambda: seen.append(("c", clock())))  # same time: FIFO
    late = clock.call_later(100, lambda: seen.append(("late", clock())))
    assert late.when == 100
    assert clock.pending_timers() == 4
    clock.advance(50)
    assert seen == [("a", 10), ("b", 30), ("c", 30)]
    late.cancel()
    clock.advance(100)
    assert seen == [("a", 10), ("b", 30), ("c", 30)]
    assert clock.pending_timers() == 0
    with pytest.raises(ValueError, match="delay"):
        clock.call_later(-1, lambda: None)


def test_a_timer_may_schedule_another_that_falls_due_in_the_same_advance() -> None:
    clock = FakeClock()
    seen: list[float] = []

    def tick() -> None:
        seen.append(clock())
        if len(seen) < 3:
            clock.call_later(10, tick)

    clock.call_later(10, tick)
    clock.advance(100)
    assert seen == [10, 20, 30]


def test_listeners_hear_every_advance_until_they_unsubscribe() -> None:
    clock = FakeClock()
    heard: list[float] = []
    unsubscribe = clock.on_advance(heard.append)
    clock.advance(1)
    clock.advance(2)
    unsubscribe()
    clock.advance(3)
    assert heard == [1, 3]


def test_protocol_and_default_clock() -> None:
    assert isinstance(FakeClock(), AdvancingClock)
    assert not isinstance(time.monotonic, AdvancingClock)
    assert monotonic is time.monotonic
