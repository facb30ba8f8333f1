"""The engine of Pattern 2: keys in wipeable buffers, per session id, with two deadlines.

Expiry is decided under one lock at every access, and by an optional sweeper thread that
sleeps on a condition variable until the next deadline. Callbacks run outside the lock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, Self

from patterns.clock import AdvancingClock, Clock, monotonic
from patterns.errors import ConfigurationError, StoreUnavailable
from patterns.keys import ApiKey

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "Deadlines",
    "Expiry",
    "ExpiryCallback",
    "ExpiryReason",
    "SessionKeyStore",
]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT: Final = 1800.0  # 30 min: the top of OWASP's low-risk range
DEFAULT_ABSOLUTE_TIMEOUT: Final = 28800.0  # 8 h: the top of OWASP's absolute range
_MAX_SWEEPER_SLEEP: Final = 60.0  # real seconds; bounds the damage of a clock we cannot wait on

ExpiryReason = Literal["idle", "absolute"]


@dataclass(frozen=True, slots=True)
class Expiry:
    """What an expiry callback receives: why and when a key expired, and which key.

    ``expired_at`` is the deadline that passed (on the manager's clock), not the moment the
    expiry was noticed. ``session_id`` is None for a :class:`SessionKeyManager`.
    """

    reason: ExpiryReason
    fingerprint: str
    expired_at: float
    session_id: str | None = None


ExpiryCallback = Callable[[Expiry], None]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The two deadlines of a held key, on the manager's clock (``absolute`` may be None)."""

    idle: float
    absolute: float | None

    @property
    def first(self) -> float:
        """Whichever deadline comes first: the moment the key expires without more activity."""
        return self.idle if self.absolute is None else min(self.idle, self.absolute)

    @property
    def reason(self) -> ExpiryReason:
        """Which deadline :attr:`first` is (``absolute`` on a tie: it cannot be extended)."""
        return "absolute" if self.absolute is not None and self.absolute <= self.idle else "idle"


class _Slot:
    """One held key: a wipeable buffer and its deadlines. Only touched under the store lock."""

    __slots__ = ("_buffer", "absolute", "fingerprint", "idle")

    def __init__(self, key: ApiKey, idle: float, absolute: float | None) -> None:
        self._buffer = bytearray(key.reveal(), "ascii")  # ApiKey guarantees printable ASCII
        self.fingerprint = key.fingerprint
        self.idle = idle
        self.absolute = absolute

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.idle, self.absolute)

    def key(self) -> ApiKey:
        return ApiKey(self._buffer.decode("ascii"))

    def wipe(self) -> None:
        """Overwrite the buffer in place, so the manager's own copy no longer holds the key."""
        self._buffer[:] = bytes(len(self._buffer))


def _check_timeouts(idle_timeout: float, absolute_timeout: float | None) -> None:
    if not isinstance(idle_timeout, int | float) or not math.isfinite(idle_timeout):
        raise ConfigurationError("idle_timeout must be a finite number of seconds, e.g. 1800.0")
    if idle_timeout <= 0:
        raise ConfigurationError("idle_timeout must be > 0 seconds (OWASP: 120-1800)")
    if absolute_timeout is None:
        return
    if not isinstance(absolute_timeout, int | float) or not math.isfinite(absolute_timeout):
        raise ConfigurationError("absolute_timeout must be a number of seconds or None")
    if absolute_timeout <= 0:
        raise ConfigurationError("absolute_timeout must be > 0 seconds (OWASP: 14400-28800)")


class SessionKeyStore:
    """API keys held in memory per session id, with idle and absolute expiry.

    Key it by a server-side session identifier that is safe to log (for example a hash of
    the session cookie), never by the raw cookie value: ids are passed to expiry callbacks.
    All methods are thread-safe; expiry callbacks run outside the lock, in the thread that
    noticed the expiry (a caller of ``get_key``/``time_left``/``sweep``, or the sweeper).
    """

    def __init__(
        self,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        absolute_timeout: float | None = DEFAULT_ABSOLUTE_TIMEOUT,
        *,
        clock: Clock = monotonic,
        max_sessions: int = 100_000,
    ) -> None:
        _check_timeouts(idle_timeout, absolute_timeout)
        if max_sessions < 1:
            raise ConfigurationError("max_sessions must be at least 1")
        self.idle_timeout = float(idle_timeout)
        self.absolute_timeout = None if absolute_timeout is None else float(absolute_timeout)
        self.max_sessions = max_sessions
        self._clock = clock
        self._condition = threading.Condition(threading.RLock())
        self._slots: dict[str, _Slot] = {}
        # The sweeper's agenda: a min-heap of (when, sequence, session id, slot). Entries go
        # stale instead of being removed (on clear, replace, expiry at access) and are dropped
        # when popped; an entry whose key saw activity is pushed again with its new deadline.
        # Invariant: a live slot has exactly one entry, at or before its first deadline.
        self._agenda: list[tuple[float, int, str, _Slot]] = []
        self._sequence = itertools.count()
        self._callbacks: list[ExpiryCallback] = []
        self._sweeper: threading.Thread | None = None
        self._stopping = False
        self._unsubscribe_clock: Callable[[], None] | None = None

    # -- the contract ------------------------------------------------------------------------
    def set_key(self, session_id: str, key: str | ApiKey) -> None:
        """Hold ``key`` for ``session_id`` with fresh deadlines, wiping any key it replaces.

        Replacing a key is not an expiry: no callback fires. Raises :class:`InvalidKeyError`
        for a malformed key and :class:`StoreUnavailable` when the store is full.
        """
        _check_session_id(session_id)
        api_key = key if isinstance(key, ApiKey) else ApiKey(key)
        expired: list[Expiry] = []
        with self._condition:
            now = self._clock()
            old = self._slots.pop(session_id, None)
            if old is not None:
                old.wipe()
            if len(self._slots) >= self.max_sessions:
                expired = self._expire_due_locked(now)
            if len(self._slots) >= self.max_sessions:
                raise StoreUnavailable(
                    f"the session key store is full ({self.max_sessions} sessions); "
                    "raise max_sessions or shorten the timeouts"
                )
            absolute = None if self.absolute_timeout is None else now + self.absolute_timeout
            slot = _Slot(api_key, now + self.idle_timeout, absolute)
            self._slots[session_id] = slot
            if not self._agenda or slot.deadlines.first < self._agenda[0][0]:
                self._condition.notify_all()  # the sweeper must wake earlier than planned
            self._schedule_locked(session_id, slot)
        self._run_callbacks(expired)

    def get_key(self, session_id: str) -> ApiKey | None:
        """Return the key, or None when absent or expired (an expired key is wiped now).

        A successful get is activity: it pushes the idle deadline back, never the absolute one.
        """
        with self._condition:
            now = self._clock()
            slot, expired = self._live_slot_locked(session_id, now)
            if slot is not None:
                slot.idle = now + self.idle_timeout
                return slot.key()
        self._run_callbacks(expired)
        return None

    def clear(self, session_id: str) -> bool:
        """Wipe and forget the key (logout). Returns whether one was held. Fires no callback."""
        with self._condition:
            slot = self._slots.pop(session_id, None)
            if slot is None:
                return False
            slot.wipe()
            self._condition.notify_all()
            return True

    def clear_all(self) -> int:
        """Wipe every key (shutdown); returns how many there were. Fires no callback."""
        with self._condition:
            slots = list(self._slots.values())
            self._slots.clear()
            self._agenda.clear()
            for slot in slots:
                slot.wipe()
            self._condition.notify_all()
            return len(slots)

    def deadlines(self, session_id: str) -> Deadlines | None:
        """The key's deadlines without touching it, or None (expiring it if they passed)."""
        with self._condition:
            slot, expired = self._live_slot_locked(session_id, self._clock())
            deadlines = None if slot is None else slot.deadlines
        self._run_callbacks(expired)
        return deadlines

    def time_left(self, session_id: str) -> float | None:
        """Seconds until whichever deadline comes first, or None when no live key is held.

        Reading it is not activity: the idle deadline does not move.
        """
        with self._condition:
            now = self._clock()
            slot, expired = self._live_slot_locked(session_id, now)
            left = None if slot is None else slot.deadlines.first - now
        self._run_callbacks(expired)
        return left

    def on_expire(self, callback: ExpiryCallback) -> Callable[[], None]:
        """Call ``callback(expiry)`` once each time a key expires; returns an unsubscribe.

        Use it to tell the user their key is gone and must be entered again. A callback that
        raises is logged and does not stop the others.
        """
        with self._condition:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._condition:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def sweep(self) -> int:
        """Expire and wipe every key whose deadline has passed; returns how many."""
        with self._condition:
            expired = self._expire_due_locked(self._clock())
        self._run_callbacks(expired)
        return len(expired)

    def __len__(self) -> int:
        """How many keys are held, counting expired ones that no access or sweep noticed yet."""
        with self._condition:
            return len(self._slots)

    # -- the sweeper ---------------------------------------------------------------------------
    @property
    def sweeper_running(self) -> bool:
        """Whether the background sweeper thread is alive."""
        return self._sweeper is not None and self._sweeper.is_alive()

    def start_sweeper(self) -> None:
        """Start a daemon thread that wipes keys as their deadlines pass (idempotent).

        It sleeps on a condition variable until the next deadline; setting or clearing a key
        wakes it, and so does advancing a :class:`~patterns.clock.FakeClock`, so tests need
        no real sleeping. Stop it with :meth:`stop_sweeper` or :meth:`close`.
        """
        with self._condition:
            if self.sweeper_running:
                return
            self._stopping = False
            if isinstance(self._clock, AdvancingClock):
                self._unsubscribe_clock = self._clock.on_advance(self._wake)
            self._sweeper = threading.Thread(
                target=self._sweep_forever, name="session-key-sweeper", daemon=True
            )
            self._sweeper.start()

    def stop_sweeper(self, timeout: float = 5.0) -> None:
        """Stop the sweeper and wait up to ``timeout`` seconds for its thread to end."""
        with self._condition:
            sweeper, self._sweeper = self._sweeper, None
            self._stopping = True
            self._condition.notify_all()
            unsubscribe, self._unsubscribe_clock = self._unsubscribe_clock, None
        if unsubscribe is not None:
            unsubscribe()
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(timeout)

    def close(self) -> None:
        """Stop the sweeper and wipe every key."""
        self.stop_sweeper()
        self.clear_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _wake(self, _now: float) -> None:
        with self._condition:
            self._condition.notify_all()

    def _sweep_forever(self) -> None:
        while True:
            with self._condition:
                if self._stopping:
                    return
                now = self._clock()
                expired = self._expire_due_locked(now)
                if not expired:
                    self._condition.wait(self._sleep_for_locked(now))
                    continue
            self._run_callbacks(expired)

    def _sleep_for_locked(self, now: float) -> float:
        if not self._agenda:
            return _MAX_SWEEPER_SLEEP
        return min(max(self._agenda[0][0] - now, 0.0), _MAX_SWEEPER_SLEEP)

    # -- expiry ----------------------------------------------------------------------------
    def _live_slot_locked(self, session_id: str, now: float) -> tuple[_Slot | None, list[Expiry]]:
        """The slot if its key is live at ``now``; else None, after expiring a stale one."""
        slot = self._slots.get(session_id)
        if slot is None:
            return None, []
        if now < slot.deadlines.first:
            return slot, []
        return None, [self._expire_locked(session_id, slot)]

    def _expire_locked(self, session_id: str, slot: _Slot) -> Expiry:
        deadlines = slot.deadlines
        del self._slots[session_id]
        slot.wipe()
        return Expiry(deadlines.reason, slot.fingerprint, deadlines.first, session_id)

    def _expire_due_locked(self, now: float) -> list[Expiry]:
        """Expire every key whose deadline has passed: O(log n) per agenda entry handled."""
        expired: list[Expiry] = []
        while self._agenda and self._agenda[0][0] <= now:
            _, _, session_id, slot = heapq.heappop(self._agenda)
            if self._slots.get(session_id) is not slot:
                continue  # cleared, replaced or expired at access since it was scheduled
            if now < slot.deadlines.first:
                self._schedule_locked(session_id, slot)  # activity moved the deadline
                continue
            expired.append(self._expire_locked(session_id, slot))
        return expired

    def _schedule_locked(self, session_id: str, slot: _Slot) -> None:
        if len(self._agenda) > 2 * len(self._slots) + 64:  # too many stale entries: rebuild
            self._agenda = [
                (live.deadlines.first, next(self._sequence), sid, live)
                for sid, live in self._slots.items()
                if live is not slot
            ]
            heapq.heapify(self._agenda)
        entry = (slot.deadlines.first, next(self._sequence), session_id, slot)
        heapq.heappush(self._agenda, entry)

    def _run_callbacks(self, expired: list[Expiry]) -> None:
        if not expired:
            return
        with self._condition:
            callbacks = list(self._callbacks)
        for expiry in expired:
            for callback in callbacks:
                try:
                    callback(expiry)
                except Exception:
                    logger.exception("an on_expire callback failed (%s)", expiry.fingerprint)


def _check_session_id(session_id: str) -> None:
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("a session id must be a non-empty str")
