"""The BFF's state behind four small async interfaces, with in-memory implementations.

- sessions: a random 256-bit id (``secrets``) goes to the browser; the store keeps only its
  SHA-256, so a dump of the store cannot be replayed as cookies. Idle and absolute expiry are
  checked on every read, with the semantics of :mod:`patterns.session_keys` (the same OWASP
  defaults). That module is not reused as the store itself: it holds *keys* in wipeable
  buffers inside one process, while BFF sessions hold no key and must be shared by replicas.
  A per-user index (hashes only) lets incident response end every session of one user
  (:meth:`SessionStore.end_user_sessions`); it shrinks with logout, expiry and purges, and a
  user holds at most :data:`DEFAULT_MAX_SESSIONS_PER_USER` sessions (the oldest is ended at
  the next sign-in beyond it), so one user cannot grow it without bound.
- rate limits: the ``limits`` library's moving window, one per (purpose, user), through
  :class:`patterns.bff.ratelimit.LimitsRateLimiter` (memory here, Redis there).
- keys: the user's *sealed* API key (:func:`patterns.kms.seal`) and its fingerprint.
- usage: requests and input/output tokens per user.

:mod:`patterns.bff.redis_stores` implements the same interfaces on Redis for several
processes; every Redis failure becomes :class:`~patterns.errors.StoreUnavailable` (503).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from patterns.bff.settings import RateLimit

__all__ = [
    "DEFAULT_MAX_SESSIONS_PER_USER",
    "Decision",
    "KeyRecord",
    "KeyStore",
    "MemoryKeyStore",
    "MemorySessionStore",
    "MemoryUsageStore",
    "RateLimiter",
    "Session",
    "SessionStore",
    "Stores",
    "Usage",
    "UsageStore",
    "hash_session_id",
    "memory_stores",
    "new_session_id",
]

_SESSION_ID_BYTES: Final = 32  # 256 bits
#: Sessions one user may hold at once; a sign-in beyond it ends their oldest. Fifty is far
#: above a person's browsers and devices, and keeps every per-user operation small.
DEFAULT_MAX_SESSIONS_PER_USER: Final = 50


def new_session_id() -> str:
    """256 random bits from ``secrets``, URL-safe (43 characters)."""
    return secrets.token_urlsafe(_SESSION_ID_BYTES)


def hash_session_id(session_id: str) -> str:
    """What the store keeps instead of the id: its SHA-256 (no salt needed, the id is random)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, its CSRF token, and its two clocks."""

    username: str
    csrf_token: str
    created_at: float
    last_seen: float


def expired(session: Session, now: float, idle: float, absolute: float) -> bool:
    """OWASP's two deadlines: idle since the last request, absolute since sign-in."""
    return now >= session.created_at + absolute or now >= session.last_seen + idle


class SessionStore(Protocol):
    async def create(self, username: str, now: float) -> tuple[str, Session]: ...

    async def get(self, session_id: str, now: float) -> Session | None:
        """The live session (its idle clock restarted), or None; expired ones are deleted."""
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def end_user_sessions(self, username: str) -> int:
        """Delete every session of ``username``; return how many there were.

        Atomic with respect to :meth:`create`: a session created concurrently is either
        ended by this call or created after it (and so survives it). Its id, replayed after
        this returns, finds no session (the app answers 401).
        """
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A rate-limit answer: allowed or not, when to try again, and how many calls are left
    (negative when the limiter did not count them: see ``patterns.bff.ratelimit``)."""

    allowed: bool
    retry_after: float
    remaining: float


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: RateLimit, now: float, cost: float = 1.0) -> Decision: ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the vault stores for a user: the sealed key, and its fingerprint for display."""

    sealed: str
    fingerprint: str


class KeyStore(Protocol):
    async def put(self, username: str, record: KeyRecord) -> None: ...

    async def get(self, username: str) -> KeyRecord | None: ...

    async def delete(self, username: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Usage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class UsageStore(Protocol):
    async def add(
        self, username: str, requests: int, input_tokens: int, output_tokens: int
    ) -> None: ...

    async def get(self, username: str) -> Usage: ...

    async def reserve(self, username: str, tokens: int, budget: int) -> bool:
        """Hold ``tokens`` against ``budget`` (used + held), in one atomic step; False if
        they do not fit. Concurrent requests then cannot all pass a check of the old total."""
        ...

    async def release(self, username: str, tokens: int) -> None:
        """Give back a hold once the real usage has been added."""
        ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The four stores an app uses; ``close`` releases connections (Redis) at shutdown."""

    sessions: SessionStore
    limiter: RateLimiter
    keys: KeyStore
    usage: UsageStore
    close: Callable[[], object] | None = None
    kind: str = "memory"


# -- in memory: one process --------------------------------------------------------------


class MemorySessionStore:
    """Sessions in a dict keyed by the id's hash, and an index of hashes per user. Expired
    entries go on the next read, and in a sweep every 256 sign-ins; one lock covers both
    maps, so the index never names a session that is gone for longer than that sweep. A
    sign-in beyond ``max_sessions_per_user`` ends the user's oldest sessions first."""

    _PURGE_EVERY: Final = 256

    def __init__(
        self,
        idle_timeout: float,
        absolute_timeout: float,
        *,
        max_sessions_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER,
    ) -> None:
        if max_sessions_per_user < 1:
            raise ValueError("max_sessions_per_user must be at least 1")
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._cap = max_sessions_per_user
        self._sessions: dict[str, Session] = {}
        self._by_user: dict[str, set[str]] = {}
        self._known: set[str] = set()  # every user who signed in: see user_known
        self._lock = threading.Lock()
        self._created = 0

    async def create(self, username: str, now: float) -> tuple[str, Session]:
        session_id = new_session_id()
        session = Session(username, secrets.token_urlsafe(32), now, now)
        digest = hash_session_id(session_id)
        with self._lock:
            self._make_room_locked(username, now)
            self._sessions[digest] = session
            self._by_user.setdefault(username, set()).add(digest)
            self._known.add(username)
            self._created += 1
            if self._created % self._PURGE_EVERY == 0:
                self._purge_locked(now)
        return session_id, session

    async def get(self, session_id: str, now: float) -> Session | None:
        digest = hash_session_id(session_id)
        with self._lock:
            session = self._sessions.get(digest)
            if session is None:
                return None
            if expired(session, now, self._idle, self._absolute):
                self._drop_locked(digest)
                return None
            touched = Session(session.username, session.csrf_token, session.created_at, now)
            self._sessions[digest] = touched
            return touched

    async def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._drop_locked(hash_session_id(session_id))

    async def end_user_sessions(self, username: str) -> int:
        with self._lock:  # the same lock as create: a concurrent sign-in is before or after
            digests = self._by_user.pop(username, set())
            return sum(self._sessions.pop(digest, None) is not None for digest in digests)

    def user_sessions(self, username: str) -> int:
        """How many sessions the index holds for ``username`` (expired ones until swept)."""
        with self._lock:
            return len(self._by_user.get(username, ()))

    async def user_known(self, username: str) -> bool:
        """Whether ``username`` ever signed in here: incident response tells "nothing left"
        from "no such user" (a mistyped id) with it."""
        with self._lock:
            return username in self._known

    def _make_room_locked(self, username: str, now: float) -> None:
        owned = self._by_user.get(username)
        if owned is None or len(owned) < self._cap:
            return
        for digest in list(owned):
            if expired(self._sessions[digest], now, self._idle, self._absolute):
                self._drop_locked(digest)
        owned = self._by_user.get(username, set())
        oldest = sorted(owned, key=lambda d: (self._sessions[d].created_at, d))
        for digest in oldest[: max(0, len(owned) - self._cap + 1)]:
            self._drop_locked(digest)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _drop_locked(self, digest: str) -> bool:
        session = self._sessions.pop(digest, None)
        if session is None:
            return False
        owned = self._by_user.get(session.username)
        if owned is not None:
            owned.discard(digest)
            if not owned:
                del self._by_user[session.username]
        return True

    def _purge_locked(self, now: float) -> None:
        for digest, session in list(self._sessions.items()):
            if expired(session, now, self._idle, self._absolute):
                self._drop_locked(digest)


class MemoryKeyStore:
    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self._known: set[str] = set()
        self._lock = threading.Lock()

    async def put(self, username: str, record: KeyRecord) -> None:
        with self._lock:
            self._records[username] = record
            self._known.add(username)

    async def user_known(self, username: str) -> bool:
        """Whether ``username`` ever stored a key here (see MemorySessionStore.user_known)."""
        with self._lock:
            return username in self._known

    async def get(self, username: str) -> KeyRecord | None:
        with self._lock:
            return self._records.get(username)

    async def delete(self, username: str) -> bool:
        with self._lock:
            return self._records.pop(username, None) is not None

    def raw(self) -> dict[str, KeyRecord]:
        """A copy of what is stored: what an attacker with a database dump would see."""
        with self._lock:
            return dict(self._records)


class MemoryUsageStore:
    def __init__(self) -> None:
        self._usage: dict[str, Usage] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    async def reserve(self, username: str, tokens: int, budget: int) -> bool:
        with self._lock:
            used = self._usage.get(username, Usage()).total_tokens + self._held.get(username, 0)
            if used + tokens > budget:
                return False
            self._held[username] = self._held.get(username, 0) + tokens
            return True

    async def release(self, username: str, tokens: int) -> None:
        with self._lock:
            self._held[username] = max(0, self._held.get(username, 0) - tokens)

    async def add(
        self, username: str, requests: int, input_tokens: int, output_tokens: int
    ) -> None:
        with self._lock:
            old = self._usage.get(username, Usage())
            self._usage[username] = Usage(
                old.requests + requests,
                old.input_tokens + input_tokens,
                old.output_tokens + output_tokens,
            )

    async def get(self, username: str) -> Usage:
        with self._lock:
            return self._usage.get(username, Usage())


def memory_stores(
    idle_timeout: float,
    absolute_timeout: float,
    *,
    max_sessions_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER,
) -> Stores:
    """All four stores in this process (the default: nothing to install)."""
    from patterns.bff.ratelimit import LimitsRateLimiter  # it imports Decision from here

    return Stores(
        sessions=MemorySessionStore(
            idle_timeout, absolute_timeout, max_sessions_per_user=max_sessions_per_user
        ),
        limiter=LimitsRateLimiter(),
        keys=MemoryKeyStore(),
        usage=MemoryUsageStore(),
    )
