"""The source guide's session key manager, ported faithfully so its bugs can be shown.

Never use it: :class:`patterns.session_keys.SessionKeyManager` is the fixed version.
"""

from __future__ import annotations

from patterns.clock import FakeClock

__all__ = ["GuideSessionKeyManager"]


class GuideSessionKeyManager:
    """A line-by-line port of the source guide's ``SecureApiKeyManager``. **Do not use.**

    Kept so notebook 03 and the tests can show its bugs: ``schedule_cleanup`` arms one timer
    at ``set`` time and never re-arms it, there is no absolute lifetime, and ``clear_api_key``
    only drops a reference to an immutable string. ``setTimeout`` becomes
    :meth:`FakeClock.call_later`, ``Date.now()`` the fake clock (in seconds, not ms).
    """

    def __init__(self, clock: FakeClock, session_timeout: float = 30 * 60) -> None:
        self.clock = clock
        self.api_key: str | None = None
        self.session_timeout = session_timeout
        self.last_activity = clock()

    def set_api_key(self, key: str) -> None:
        self.api_key = key
        self.last_activity = self.clock()
        self.schedule_cleanup()

    def get_api_key(self) -> str | None:
        if self.is_expired():
            self.clear_api_key()
            return None
        self.last_activity = self.clock()
        return self.api_key

    def is_expired(self) -> bool:
        return self.clock() - self.last_activity > self.session_timeout

    def clear_api_key(self) -> None:
        self.api_key = None
        self.last_activity = 0

    def schedule_cleanup(self) -> None:
        def cleanup() -> None:
            if self.is_expired():
                self.clear_api_key()

        self.clock.call_later(self.session_timeout, cleanup)
