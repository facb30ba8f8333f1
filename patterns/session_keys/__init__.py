"""Pattern 2: keep a user's key in memory only, and only for as long as the session is alive.

The source guide's ``SecureApiKeyManager`` has the right idea (memory only, 30-minute idle
timeout) and three bugs: its cleanup timer fires once and is never rescheduled, so a key that
saw activity outlives its timeout; nothing caps the session's total lifetime; and a string
cannot be wiped. This module fixes all three:

* two deadlines, an **idle** one that each successful :meth:`~SessionKeyManager.get_key`
  pushes back and an **absolute** one that nothing extends (OWASP: 15-30 min idle and 4-8 h
  absolute for ordinary apps, 2-5 min idle for high-value ones);
* expiry is **exact at every access** (a read at or after a deadline gets ``None`` and wipes
  the key), and an optional **sweeper** thread sleeps until the next deadline, wipes what fell
  due and goes back to sleep, so an idle key does not linger until somebody asks for it;
* the key is held in a ``bytearray`` that is overwritten with zeros on clear and on expiry.
  That is best effort: every ``get_key`` hands out an immutable ``str`` copy (inside an
  :class:`~patterns.keys.ApiKey`) and the SDK makes more when it sends the key; notebook 03
  shows what survives.

:class:`SessionKeyStore` is the same logic for many users, keyed by a server-side session id
(the backend-for-frontend reuses it); :class:`SessionKeyManager` is the one-user view of it.
:class:`GuideSessionKeyManager` is a faithful port of the guide's code, kept only to teach.
"""

from __future__ import annotations

from patterns.session_keys.guide import GuideSessionKeyManager
from patterns.session_keys.manager import SessionKeyManager
from patterns.session_keys.store import (
    DEFAULT_ABSOLUTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    Deadlines,
    Expiry,
    ExpiryCallback,
    ExpiryReason,
    SessionKeyStore,
)

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "Deadlines",
    "Expiry",
    "ExpiryCallback",
    "ExpiryReason",
    "GuideSessionKeyManager",
    "SessionKeyManager",
    "SessionKeyStore",
]
