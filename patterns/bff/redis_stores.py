"""The BFF's stores in Redis, so several BFF processes serve one user.

Each operation is one round trip; the ones that read and write (session touch, sign-in) are
Lua scripts, so two replicas cannot interleave between the read and the write. The
caller's clock travels as an argument (as in :mod:`patterns.tokens.redis_store`), so a fake
clock behaves the same here as in memory, and Redis TTLs drop what has expired.

Rate limiting is the ``limits`` library's moving window
(:class:`~patterns.bff.ratelimit.LimitsRateLimiter` on ``limits.aio.storage.RedisStorage``,
sharing this connection pool; its keys are ``{ns}:rl:limits/...``, its clock the wall clock).
Every Redis error, here or in the library, becomes
:class:`~patterns.errors.StoreUnavailable`, which the app answers with 503: nothing is
served on a session or a limit that could not be checked.

Keys: ``{ns}:s:{sha256(session id)}``, ``{ns}:su:{user}`` (a SET of that user's session
hashes), ``{ns}:rl:limits/{purpose}:{user}/...`` (the library's), ``{ns}:k:{user}``,
``{ns}:u:{user}``, and two that tools read: ``{ns}:meta`` (a marker written at the first
sign-in, request or stored key, so a tool pointed at the wrong database or namespace can
tell "nothing here" from "not the BFF's data") and ``{ns}:users`` (a SET of every user
who signed in or stored a key, so a tool can tell "nothing left for alice" from "no user
alice"). The prefixes are :data:`SESSION_PREFIX` and friends (defined in
:mod:`patterns.bff.redis_common`, importable from here too): tools that work on a running
BFF's Redis (the incident command) import them rather than spell them again.

Modules: :mod:`.redis_common` (key names, the marker, Redis errors to StoreUnavailable),
:mod:`.redis_sessions` (sessions and the per-user index, which says how the index stays
bounded and when a session is missing from it) and :mod:`.redis_records` (sealed keys,
usage). This module builds the four stores on one connection pool.
"""

from __future__ import annotations

from patterns.bff.ratelimit import LimitsRateLimiter
from patterns.bff.redis_common import (
    KEY_PREFIX,
    LIMIT_PREFIX,
    MARKER,
    META_KEY,
    SESSION_PREFIX,
    USAGE_PREFIX,
    USER_SESSIONS_PREFIX,
    USERS_KEY,
)
from patterns.bff.redis_records import RedisKeys, RedisUsage
from patterns.bff.redis_sessions import RedisStores
from patterns.bff.stores import DEFAULT_MAX_SESSIONS_PER_USER, Stores
from patterns.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_SESSIONS_PER_USER",
    "KEY_PREFIX",
    "LIMIT_PREFIX",
    "MARKER",
    "META_KEY",
    "SESSION_PREFIX",
    "USAGE_PREFIX",
    "USERS_KEY",
    "USER_SESSIONS_PREFIX",
    "RedisStores",
    "redis_stores",
]


def redis_stores(
    url: str,
    *,
    idle_timeout: float,
    absolute_timeout: float,
    namespace: str = "bff",
    timeout: float = 2.0,
    max_sessions_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER,
) -> Stores:
    """All four stores on the Redis at ``url`` (``redis://`` or ``rediss://``)."""
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - the [redis] extra is missing
        raise ConfigurationError("Redis stores need the redis package: pip install redis") from None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("the Redis URL must start with redis://, rediss:// or unix://")
    client = redis.asyncio.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, max_connections=256
    )
    stores = RedisStores(
        client,
        idle_timeout=idle_timeout,
        absolute_timeout=absolute_timeout,
        namespace=namespace,
        max_sessions_per_user=max_sessions_per_user,
    )
    return Stores(
        sessions=stores,
        limiter=LimitsRateLimiter.on_redis(client, f"{namespace}:{LIMIT_PREFIX.rstrip(':')}"),
        keys=RedisKeys(stores),
        usage=RedisUsage(stores),
        close=client.aclose,
        kind="redis",
    )
