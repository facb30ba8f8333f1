"""The one-user view of :class:`~patterns.session_keys.store.SessionKeyStore`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from patterns.clock import Clock, monotonic
from patterns.keys import ApiKey
from patterns.session_keys.store import (
    DEFAULT_ABSOLUTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    Deadlines,
    Expiry,
    ExpiryCallback,
    SessionKeyStore,
)

__all__ = ["SessionKeyManager"]


class SessionKeyManager:
    """One user's key in memory, with a sliding idle timeout and an absolute cap.

    >>> from patterns.clock import FakeClock
    >>> from patterns.keys import demo_key
    >>> clock = FakeClock()
    >>> manager = SessionKeyManager(idle_timeout=300, absolute_timeout=3600, clock=clock)
    >>> manager.set_key(demo_key("doc"))
    >>> _ = clock.advance(299); manager.get_key() is not None   # activity: idle slides
    True
    >>> _ = clock.advance(300); manager.get_key() is None       # 300 s idle: wiped
    True
    """

    _SESSION: Final = "default"

    def __init__(
        self,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        absolute_timeout: float | None = DEFAULT_ABSOLUTE_TIMEOUT,
        *,
        clock: Clock = monotonic,
    ) -> None:
        self._store = SessionKeyStore(idle_timeout, absolute_timeout, clock=clock, max_sessions=1)

    @property
    def idle_timeout(self) -> float:
        return self._store.idle_timeout

    @property
    def absolute_timeout(self) -> float | None:
        return self._store.absolute_timeout

    def set_key(self, key: str | ApiKey) -> None:
        """Hold ``key`` with fresh idle and absolute deadlines (wiping any previous key)."""
        self._store.set_key(self._SESSION, key)

    def get_key(self) -> ApiKey | None:
        """The key, or None when absent or expired; a successful get extends the idle deadline."""
        return self._store.get_key(self._SESSION)

    def clear(self) -> None:
        """Wipe the key now (logout). Fires no expiry callback."""
        self._store.clear(self._SESSION)

    def time_left(self) -> float | None:
        """Seconds until the first deadline, or None when no live key is held (not activity)."""
        return self._store.time_left(self._SESSION)

    def deadlines(self) -> Deadlines | None:
        """Both deadlines (for display), or None when no live key is held (not activity)."""
        return self._store.deadlines(self._SESSION)

    def on_expire(self, callback: ExpiryCallback) -> Callable[[], None]:
        """Call ``callback(expiry)`` once per expiry (``expiry.session_id`` is None)."""

        def forward(expiry: Expiry) -> None:
            callback(dataclasses.replace(expiry, session_id=None))

        return self._store.on_expire(forward)

    def sweep(self) -> bool:
        """Expire the key now if a deadline has passed; returns whether it did."""
        return self._store.sweep() > 0

    @property
    def sweeper_running(self) -> bool:
        return self._store.sweeper_running

    def start_sweeper(self) -> None:
        """Start the background sweeper (see :meth:`SessionKeyStore.start_sweeper`)."""
        self._store.start_sweeper()

    def stop_sweeper(self, timeout: float = 5.0) -> None:
        self._store.stop_sweeper(timeout)

    def close(self) -> None:
        """Stop the sweeper and wipe the key."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        absolute = "none" if self.absolute_timeout is None else f"{self.absolute_timeout:g}s"
        return f"SessionKeyManager(idle={self.idle_timeout:g}s, absolute={absolute})"
