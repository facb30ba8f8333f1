"""The BFF's rate limits, done by the ``limits`` library (memory or Redis), not by hand.

:class:`LimitsRateLimiter` implements :class:`~patterns.bff.stores.RateLimiter` on
``limits.aio``: its moving-window strategy, over ``limits.aio.storage.MemoryStorage`` (one
process, the default) or ``limits.aio.storage.RedisStorage`` through redis-py (several BFF
processes share one count). The library keeps the timestamps and runs the atomic Lua script
in Redis; this module only maps the BFF's settings onto it and its failures onto ours.

The mapping. ``RateLimit(per_minute, burst)`` becomes a moving window of ``burst`` hits per
``burst * 60 / per_minute`` seconds (rounded *up* to whole seconds, the library's unit):
at most ``burst`` at once, and no more than ``per_minute`` a minute in the long run (a
little less when the window was rounded up; a burst that would last under a second gets
a one-second window, so ``burst`` a second). The default message limit,
``RateLimit(30, 10)``, is 10 calls in any 20 seconds.

The difference from the token bucket this replaced: a bucket gives one call back every
``60 / per_minute`` seconds after a burst; a moving window gives each call back one window
after it was made. So after a full burst the next call waits for the oldest to leave the
window (``retry_after`` up to the whole window, 20 s by default, where the bucket said 2 s),
and then the calls come back at the pace they were spent. Both allow ``burst`` at once and
``per_minute`` in the long run; the window never lets more through in any window-long span.

``retry_after`` and ``remaining`` come from the library's window stats, read only for a
refusal: an allowed call costs one Redis round trip (the stats would double it, and no
caller reads ``remaining``), so it reports ``remaining`` as :data:`NOT_COUNTED`.
``retry_after`` is when the oldest call in the window leaves it; for a ``cost`` above one it
is a lower bound (a client asked to wait and refused again is told the rest). ``cost`` is
passed through, rounded up to a whole number of hits; a cost above ``burst`` never fits.

The clock is not injectable: the library reads ``time.time()`` itself (in this process for
memory, in each BFF process for the timestamps it sends to Redis, so replicas need NTP, as
they do for sessions). The ``now`` argument of :meth:`LimitsRateLimiter.hit` is accepted for
the protocol and ignored; tests use short real windows instead of a fake clock.

Fail closed: any Redis error becomes :class:`~patterns.errors.StoreUnavailable` (the app
answers 503), with a message that names the error's type and never the URL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from patterns.bff.settings import RateLimit
from patterns.bff.stores import Decision
from patterns.errors import StoreUnavailable

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "LIMITS_NAMESPACE",
    "NOT_COUNTED",
    "HousekeptMemoryStorage",
    "LimitsRateLimiter",
    "window_of",
]

#: The first part of every key the library writes (``limits/{key}/{burst}/{seconds}/second``).
LIMITS_NAMESPACE: Final = "limits"

#: ``Decision.remaining`` of an allowed call: not counted (negative, so never mistaken for room).
NOT_COUNTED: Final = -1.0

T = TypeVar("T")


def window_of(limit: RateLimit) -> RateLimitItemPerSecond:
    """``burst`` hits per ``ceil(burst * 60 / per_minute)`` seconds (at least one)."""
    seconds = max(1, math.ceil(limit.burst * 60 / limit.per_minute - 1e-9))
    return RateLimitItemPerSecond(limit.burst, seconds, namespace=LIMITS_NAMESPACE)


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions
    except ImportError:  # pragma: no cover - memory only, without the redis package
        return (StorageError, OSError)
    return (StorageError, redis.exceptions.RedisError, OSError)


class HousekeptMemoryStorage(MemoryStorage):
    """The library's ``MemoryStorage``, its housekeeping at most once per ``interval``.

    ``limits.aio.storage.MemoryStorage`` starts a clean-up task after every hit whose
    previous clean-up has finished, and that task hands each key's window to a worker thread
    (``asyncio.to_thread``): at one call at a time, a thread hop on nearly every message,
    about a fifth of the BFF's CPU per call (docs/benchmarks.md). The clean-up only frees
    memory (expired timestamps, idle keys); every decision reads the timestamps themselves,
    so running it once a second changes no answer and bounds what it keeps to one second of
    hits per key beyond the window. Only the scheduling is replaced, by overriding the
    library's private ``__schedule_expiry`` (name-mangled); ``tests/test_bff_ratelimit.py``
    fails if a new release of ``limits`` renames it.
    """

    def __init__(self, *args: Any, interval: float = 1.0, **kwargs: Any) -> None:
        self.housekeeping_interval = interval
        self._next_housekeeping = 0.0
        super().__init__(*args, **kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The next clean-up time is a monotonic reading of the process that pickled it.
        super().__setstate__({**state, "_next_housekeeping": 0.0})

    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.housekeeping_interval
        await _LIBRARY_SCHEDULE(self)


#: The library's own scheduling, called at most once per interval.
_LIBRARY_SCHEDULE: Final[Callable[[MemoryStorage], Awaitable[None]]] = vars(MemoryStorage)[
    "_MemoryStorage__schedule_expiry"
]


class LimitsRateLimiter:
    """A :class:`~patterns.bff.stores.RateLimiter` on ``limits.aio`` (see the module doc).

    ``storage`` defaults to a new :class:`HousekeptMemoryStorage` (the library's memory
    storage, cleaned up once a second instead of after every hit): one per process, used
    from one event loop (the library's memory locks are asyncio locks). :meth:`on_redis`
    builds one that
    shares a Redis connection pool and prefixes its keys with the BFF's namespace.
    """

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage: Storage = storage if storage is not None else HousekeptMemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._errors = _redis_errors()
        self._kind = "memory" if isinstance(self.storage, MemoryStorage) else "redis"

    @classmethod
    def on_redis(cls, client: redis.asyncio.Redis, key_prefix: str) -> LimitsRateLimiter:
        """Share ``client``'s connection pool (closing the client closes it); keys start
        with ``{key_prefix}:``. Errors are wrapped by the library and mapped here."""
        options: dict[str, Any] = {"connection_pool": client.connection_pool}
        storage = RedisStorage(
            "async+redis://",  # the pool decides where; the URI only picks the back end
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=key_prefix,
            **options,
        )
        return cls(storage)

    async def hit(self, key: str, limit: RateLimit, now: float, cost: float = 1.0) -> Decision:
        """Take ``cost`` hits from ``key``'s window. ``now`` is ignored: the library keeps
        its own wall clock (see the module docstring)."""
        del now
        if not cost > 0:
            raise ValueError("cost must be positive")
        hits = math.ceil(cost)
        item = window_of(limit)
        allowed = await self._guard(lambda: self._strategy.hit(item, key, cost=hits))
        if allowed:  # one round trip on the hot path: the stats cost a second one
            return Decision(True, 0.0, NOT_COUNTED)
        stats = await self._guard(lambda: self._strategy.get_window_stats(item, key))
        if hits > limit.burst:
            wait = float(item.get_expiry())  # never fits: say a whole window
        else:
            wait = max(0.0, stats.reset_time - time.time())
        return Decision(False, wait, float(max(0, stats.remaining)))

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except self._errors as error:
            cause = error.storage_error if isinstance(error, StorageError) else error
            raise StoreUnavailable(
                f"the rate-limit store ({self._kind}) is unavailable ({type(cause).__name__})"
            ) from None

    def __repr__(self) -> str:
        return f"LimitsRateLimiter(moving window, {self._kind})"
