"""A session on a fake clock, recorded as a timeline: what notebook 03's widget shows.

:class:`SessionTimeline` drives a real :class:`SessionKeyManager` with a
:class:`~patterns.clock.FakeClock` and records every event (key entered, activity, deadline
moves, expiry, logout). Fast-forwarding stops at each deadline on the way and sweeps there,
exactly as the background sweeper would, so the log shows each key wiped at its deadline
and the expiry callback asking the user to enter their key again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from patterns.clock import FakeClock
from patterns.keys import ApiKey, demo_key
from patterns.session_keys.manager import SessionKeyManager
from patterns.session_keys.store import Expiry

__all__ = ["PRESETS", "EventKind", "SessionTimeline", "TimelineEvent", "clock_text"]

EventKind = Literal["set", "activity", "refused", "expired", "logout"]

#: Timeouts (idle, absolute) in seconds, after OWASP's Session Management Cheat Sheet.
PRESETS: Final[dict[str, tuple[float, float | None]]] = {
    "low risk (30 min idle, 8 h absolute)": (1800.0, 28800.0),
    "high value (5 min idle, 4 h absolute)": (300.0, 14400.0),
    "no absolute cap (30 min idle)": (1800.0, None),
}

REENTER_PROMPT: Final = "Your session expired: enter your API key again to continue."


def clock_text(seconds: float) -> str:
    """``h:mm:ss`` for a time on the fake clock (the timeline starts at 0)."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of the timeline. ``text`` is safe to show: keys appear as fingerprints."""

    at: float
    kind: EventKind
    text: str

    def __str__(self) -> str:
        return f"{clock_text(self.at)}  {self.text}"


class SessionTimeline:
    """A simulated user session: enter a key, use it, go idle, fast-forward, get logged out."""

    def __init__(self, idle_timeout: float = 1800.0, absolute_timeout: float | None = 28800.0):
        self.clock = FakeClock()
        self.manager = SessionKeyManager(idle_timeout, absolute_timeout, clock=self.clock)
        self.manager.on_expire(self._expired)
        self.events: list[TimelineEvent] = []
        self.prompt: str | None = None  # what the UI tells the user; set by the callback
        self.held: list[tuple[float, float | None]] = []  # (from, to) while a key was held

    # -- what a user does ---------------------------------------------------------------------
    def enter_key(self, key: ApiKey | None = None) -> None:
        """The user enters a key (a demo key by default): fresh idle and absolute deadlines."""
        key = key if key is not None else demo_key("timeline")
        self._close_held_period()
        self.manager.set_key(key)
        self.prompt = None
        self.held.append((self.clock(), None))
        self._log("set", f"key {key.fingerprint} entered; {self._deadline_text()}")

    def activity(self) -> bool:
        """The app makes an API call: reads the key (sliding the idle deadline) if it can."""
        key = self.manager.get_key()
        if key is None:
            self._log("refused", "API call refused: no key held (ask the user for it)")
            return False
        self._log("activity", f"API call with {key.fingerprint}; {self._deadline_text()}")
        return True

    def logout(self) -> None:
        """The user logs out: the key is wiped at once (no expiry callback)."""
        if self.manager.time_left() is None:
            self._log("logout", "logout: no key was held")
            return
        self.manager.clear()
        self._close_held_period()
        self._log("logout", "logout: key wiped")

    def fast_forward(self, seconds: float) -> None:
        """Let ``seconds`` pass with no activity, stopping at each deadline to sweep."""
        target = self.clock() + seconds
        while True:
            deadlines = self.manager.deadlines()
            if deadlines is None or deadlines.first > target:
                break
            self.clock.advance_to(deadlines.first)
            self.manager.sweep()
        self.clock.advance_to(target)

    # -- what the view shows --------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock()

    def status(self) -> str:
        """One line: whether a key is held, until when, and why it would expire."""
        deadlines = self.manager.deadlines()
        if deadlines is None:
            waiting = f"; UI says: {self.prompt}" if self.prompt else ""
            return f"at {clock_text(self.now)}: no key in memory{waiting}"
        left = clock_text(deadlines.first - self.now)
        return (
            f"at {clock_text(self.now)}: key held, wiped in {left} "
            f"({deadlines.reason} deadline) unless there is activity"
        )

    def summary(self, last: int | None = None) -> str:
        """The event log (the ``last`` events only, if given) followed by the status line."""
        events = self.events if last is None else self.events[-last:]
        return "\n".join([*(str(event) for event in events), self.status()])

    # -- internals --------------------------------------------------------------------------
    def _expired(self, expiry: Expiry) -> None:
        self.prompt = REENTER_PROMPT
        self._close_held_period(at=expiry.expired_at)
        self._log(
            "expired",
            f"key {expiry.fingerprint} wiped ({expiry.reason} timeout); "
            f"callback: {REENTER_PROMPT!r}",
            at=expiry.expired_at,
        )

    def _deadline_text(self) -> str:
        deadlines = self.manager.deadlines()
        if deadlines is None:
            return "no deadlines"
        absolute = "none" if deadlines.absolute is None else clock_text(deadlines.absolute)
        return f"idle deadline {clock_text(deadlines.idle)}, absolute {absolute}"

    def _close_held_period(self, at: float | None = None) -> None:
        if self.held and self.held[-1][1] is None:
            self.held[-1] = (self.held[-1][0], self.clock() if at is None else at)

    def _log(self, kind: EventKind, text: str, at: float | None = None) -> None:
        self.events.append(TimelineEvent(self.clock() if at is None else at, kind, text))
