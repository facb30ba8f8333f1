"""Clocks as parameters, so that expiry can be tested and taught without waiting.

Every module that reasons about time takes a ``clock``: a zero-argument callable returning
seconds as a float (``time.monotonic`` by default; wall-clock time jumps when NTP or a user
changes it, so deadlines use a monotonic clock). Tests and notebooks pass a
:class:`FakeClock` instead and move time forward by hand:

>>> clock = FakeClock()
>>> fired = []
>>> _ = clock.call_later(10.0, lambda: fired.append(clock()))
>>> clock.advance(30.0)
30.0
>>> fired
[10.0]

A fake clock also plays the role of a timer queue (``call_later``, like JavaScript's
``setTimeout``), and tells listeners when it moves (``on_advance``), so a background thread
that sleeps until a deadline can be woken by a test instead of by real time passing.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["AdvancingClock", "Clock", "FakeClock", "TimerHandle", "monotonic"]

#: A clock is any zero-argument callable returning seconds (only differences matter).
Clock = Callable[[], float]

#: The default clock of every pattern: immune to wall-clock jumps.
monotonic: Clock = time.monotonic


@runtime_checkable
class AdvancingClock(Protocol):
    """A clock that moves in jumps and can wake whoever waits on it (a fake clock).

    Code that sleeps until a deadline (a sweeper thread) subscribes with :meth:`on_advance`,
    because a real ``Condition.wait(timeout)`` knows nothing about fake time.
    """

    def __call__(self) -> float: ...

    def on_advance(self, listener: Callable[[float], None]) -> Callable[[], None]: ...


@dataclass(order=True)
class _Timer:
    when: float
    sequence: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class TimerHandle:
    """What :meth:`FakeClock.call_later` returns: lets the caller cancel the timer."""

    __slots__ = ("_timer",)

    def __init__(self, timer: _Timer) -> None:
        self._timer = timer

    @property
    def when(self) -> float:
        """The fake time at which the callback runs."""
        return self._timer.when

    def cancel(self) -> None:
        """Stop the callback from running (no effect if it already ran)."""
        self._timer.cancelled = True


class FakeClock:
    """A thread-safe clock that only moves when told to.

    ``FakeClock(start)()`` returns the current fake time; :meth:`advance` moves it forward,
    runs timers that fall due (in time order, each at its own due time) and then notifies
    listeners. Callbacks and listeners run in the thread that called :meth:`advance`, outside
    the clock's lock, so they may read the clock or schedule more timers.
    """

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError("a FakeClock must start at a finite time")
        self._now = float(start)
        self._lock = threading.RLock()
        self._timers: list[_Timer] = []
        self._sequence = itertools.count()
        self._listeners: dict[int, Callable[[float], None]] = {}
        self._listener_ids = itertools.count()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        """The current fake time (same as calling the clock)."""
        return self()

    def __repr__(self) -> str:
        return f"FakeClock(now={self():g})"

    # -- moving time ------------------------------------------------------------------------
    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0); run due timers; return the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("a clock only moves forward: advance by a finite number >= 0")
        with self._lock:
            target = self._now + seconds
        self._run_timers_until(target)
        with self._lock:
            self._now = max(self._now, target)
            now = self._now
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener(now)
        return now

    def advance_to(self, when: float) -> float:
        """Move time forward to ``when`` (no-op if the clock is already there or past it)."""
        return self.advance(max(0.0, when - self()))

    def _run_timers_until(self, target: float) -> None:
        while True:
            with self._lock:
                if not self._timers or self._timers[0].when > target:
                    return
                timer = heapq.heappop(self._timers)
                if timer.cancelled:
                    continue
                self._now = max(self._now, timer.when)
            timer.callback()

    # -- timers and listeners ---------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once, when the clock has advanced ``delay`` seconds from now.

        The fake-time twin of JavaScript's ``setTimeout`` and of ``threading.Timer``.
        """
        if not math.isfinite(delay) or delay < 0:
            raise ValueError("a timer delay must be a finite number >= 0")
        with self._lock:
            timer = _Timer(self._now + delay, next(self._sequence), callback)
            heapq.heappush(self._timers, timer)
        return TimerHandle(timer)

    def pending_timers(self) -> int:
        """How many timers are scheduled and not cancelled."""
        with self._lock:
            return sum(not timer.cancelled for timer in self._timers)

    def on_advance(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(now)`` after every :meth:`advance`; returns an unsubscribe function."""
        with self._lock:
            listener_id = next(self._listener_ids)
            self._listeners[listener_id] = listener

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.pop(listener_id, None)

        return unsubscribe
