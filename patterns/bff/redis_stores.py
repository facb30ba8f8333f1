"""The BFF's stores in Redis, so several BFF processes serve one user.

Each operation is one round trip; the ones that read and write (session touch, rate-limit
hit) are Lua scripts, so two replicas cannot interleave between the read and the write. The
caller's clock travels as an argument (as in :mod:`patterns.tokens.redis_store`), so a fake
clock behaves the same here as in memory, and Redis TTLs drop what has expired.

Rate limiting is a token bucket written here, not taken from a library: the ``limits``
package (the usual choice, with memory and Redis back ends) is not a dependency of this
project, and the bucket is 12 lines of Lua. Every Redis error becomes
:class:`~patterns.errors.StoreUnavailable`, which the app answers with 503: nothing is
served on a session or a limit that could not be checked.

Keys: ``{ns}:s:{sha256(session id)}``, ``{ns}:rl:{purpose}:{user}``, ``{ns}:k:{user}``,
``{ns}:u:{user}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from patterns.bff.settings import RateLimit
from patterns.bff.stores import (
    Decision,
    KeyRecord,
    Session,
    Stores,
    Usage,
    hash_session_id,
    new_session_id,
)
from patterns.errors import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisStores", "redis_stores"]

P = ParamSpec("P")
T = TypeVar("T")

_CREATE: Final = """
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'csrf', ARGV[2], 'created', ARGV[3], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_TOUCH: Final = """
local f = redis.call('HMGET', KEYS[1], 'user', 'csrf', 'created', 'seen')
if not f[1] then return false end
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local created, seen = tonumber(f[3]), tonumber(f[4])
if now >= created + absolute or now >= seen + idle then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
local ttl = math.min(idle, created + absolute - now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl * 1000)))
return {f[1], f[2], f[3], ARGV[1]}
"""

_BUCKET: Final = """
local burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'level', 'at')
local level, at = tonumber(s[1]) or burst, tonumber(s[2]) or now
level = math.min(burst, level + math.max(0, now - at) * rate)
local allowed, wait = 0, 0
if level >= cost then level = level - cost; allowed = 1 else wait = (cost - level) / rate end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait), tostring(level)}
"""


def _fail_closed(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn any Redis error into StoreUnavailable (the message names no key or URL)."""
    import redis.exceptions

    @wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (redis.exceptions.RedisError, OSError) as error:
            raise StoreUnavailable(
                f"the session store (Redis) is unavailable ({type(error).__name__})"
            ) from None

    return guarded


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStores:
    """One Redis connection pool and the four stores on it."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        idle_timeout: float,
        absolute_timeout: float,
        namespace: str = "bff",
    ) -> None:
        self._redis = client
        self._ns = namespace
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._create = client.register_script(_CREATE)
        self._touch = client.register_script(_TOUCH)
        self._bucket = client.register_script(_BUCKET)

    # -- sessions ------------------------------------------------------------------------
    @_fail_closed
    async def create(self, username: str, now: float) -> tuple[str, Session]:
        session_id = new_session_id()
        csrf = secrets.token_urlsafe(32)
        key = f"{self._ns}:s:{hash_session_id(session_id)}"
        ttl_ms = max(1, int(self._idle * 1000))
        await self._create(keys=[key], args=[username, csrf, repr(now), ttl_ms])
        return session_id, Session(username, csrf, now, now)

    @_fail_closed
    async def get(self, session_id: str, now: float) -> Session | None:
        key = f"{self._ns}:s:{hash_session_id(session_id)}"
        found = await self._touch(keys=[key], args=[repr(now), self._idle, self._absolute])
        if not found:
            return None
        user, csrf, created, seen = (_text(value) for value in found)
        return Session(user, csrf, float(created), float(seen))

    @_fail_closed
    async def delete(self, session_id: str) -> bool:
        deleted = await self._redis.delete(f"{self._ns}:s:{hash_session_id(session_id)}")
        return bool(deleted)

    # -- rate limits ---------------------------------------------------------------------
    @_fail_closed
    async def hit(self, key: str, limit: RateLimit, now: float, cost: float = 1.0) -> Decision:
        allowed, wait, level = await self._bucket(
            keys=[f"{self._ns}:rl:{key}"],
            args=[limit.burst, repr(limit.per_second), repr(now), repr(cost)],
        )
        return Decision(bool(int(allowed)), float(_text(wait)), float(_text(level)))


class _RedisKeys:
    def __init__(self, stores: RedisStores) -> None:
        self._s = stores

    @_fail_closed
    async def put(self, username: str, record: KeyRecord) -> None:
        mapping: Any = {
            "sealed": record.sealed,
            "fingerprint": record.fingerprint,
        }
        await self._s._redis.hset(f"{self._s._ns}:k:{username}", mapping=mapping)

    @_fail_closed
    async def get(self, username: str) -> KeyRecord | None:
        found = await self._s._redis.hmget(f"{self._s._ns}:k:{username}", ["sealed", "fingerprint"])
        if not found or found[0] is None or found[1] is None:
            return None
        return KeyRecord(_text(found[0]), _text(found[1]))

    @_fail_closed
    async def delete(self, username: str) -> bool:
        return bool(await self._s._redis.delete(f"{self._s._ns}:k:{username}"))


# Holds against a user's budget, checked and taken in one server-side step (see
# UsageStore.reserve): used + held + asked must fit the budget.
_RESERVE: Final = """
local f = redis.call('HMGET', KEYS[1], 'input_tokens', 'output_tokens', 'held')
local used = (tonumber(f[1]) or 0) + (tonumber(f[2]) or 0) + (tonumber(f[3]) or 0)
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'held', ARGV[1])
return 1
"""

_RELEASE: Final = """
local held = (tonumber(redis.call('HGET', KEYS[1], 'held')) or 0) - tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'held', math.max(0, held))
return 1
"""


class _RedisUsage:
    def __init__(self, stores: RedisStores) -> None:
        self._s = stores

    @_fail_closed
    async def add(
        self, username: str, requests: int, input_tokens: int, output_tokens: int
    ) -> None:
        key = f"{self._s._ns}:u:{username}"
        async with self._s._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "requests", requests)
            pipe.hincrby(key, "input_tokens", input_tokens)
            pipe.hincrby(key, "output_tokens", output_tokens)
            await pipe.execute()

    @_fail_closed
    async def reserve(self, username: str, tokens: int, budget: int) -> bool:
        key = f"{self._s._ns}:u:{username}"
        reply = await self._s._redis.eval(_RESERVE, 1, key, tokens, budget)
        return bool(int(reply))

    @_fail_closed
    async def release(self, username: str, tokens: int) -> None:
        key = f"{self._s._ns}:u:{username}"
        await self._s._redis.eval(_RELEASE, 1, key, tokens)

    @_fail_closed
    async def get(self, username: str) -> Usage:
        found = await self._s._redis.hmget(
            f"{self._s._ns}:u:{username}", ["requests", "input_tokens", "output_tokens"]
        )
        requests, inputs, outputs = (int(_text(v)) if v is not None else 0 for v in found)
        return Usage(requests, inputs, outputs)


def redis_stores(
    url: str,
    *,
    idle_timeout: float,
    absolute_timeout: float,
    namespace: str = "bff",
    timeout: float = 2.0,
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
        client, idle_timeout=idle_timeout, absolute_timeout=absolute_timeout, namespace=namespace
    )
    return Stores(
        sessions=stores,
        limiter=stores,
        keys=_RedisKeys(stores),
        usage=_RedisUsage(stores),
        close=client.aclose,
        kind="redis",
    )
