"""Users' sealed keys and usage in Redis, on the connection pool of :class:`RedisStores`.

A stored key also writes the marker and adds the user to the users set, in the same
transaction, so tools can tell "nothing left for alice" from "no user alice". A budget is
checked and held in one server-side step (a Lua script), so two replicas cannot both spend
the last tokens.
"""

from __future__ import annotations

from typing import Any, Final

from patterns.bff.redis_common import KEY_PREFIX, MARKER, USAGE_PREFIX, fail_closed, text
from patterns.bff.redis_sessions import RedisStores
from patterns.bff.stores import KeyRecord, Usage

__all__ = ["RedisKeys", "RedisUsage"]


class RedisKeys:
    """Sealed keys: ``{ns}:k:{user}``, a hash of the sealed key and its fingerprint."""

    def __init__(self, stores: RedisStores) -> None:
        self._s = stores

    @fail_closed
    async def put(self, username: str, record: KeyRecord) -> None:
        mapping: Any = {
            "sealed": record.sealed,
            "fingerprint": record.fingerprint,
        }
        async with self._s._redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self._s._ns}:{KEY_PREFIX}{username}", mapping=mapping)
            pipe.set(self._s._meta, MARKER, nx=True)
            pipe.sadd(self._s._users, username)
            await pipe.execute()

    def location(self) -> str:
        return self._s.location()

    async def verify_location(self) -> None:
        await self._s.verify_location()

    async def user_known(self, username: str) -> bool:
        return await self._s.user_known(username)

    @fail_closed
    async def get(self, username: str) -> KeyRecord | None:
        found = await self._s._redis.hmget(
            f"{self._s._ns}:{KEY_PREFIX}{username}", ["sealed", "fingerprint"]
        )
        if not found or found[0] is None or found[1] is None:
            return None
        return KeyRecord(text(found[0]), text(found[1]))

    @fail_closed
    async def delete(self, username: str) -> bool:
        return bool(await self._s._redis.delete(f"{self._s._ns}:{KEY_PREFIX}{username}"))


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


class RedisUsage:
    """Usage counters and budget holds: ``{ns}:u:{user}``, a hash of counts."""

    def __init__(self, stores: RedisStores) -> None:
        self._s = stores

    @fail_closed
    async def add(
        self, username: str, requests: int, input_tokens: int, output_tokens: int
    ) -> None:
        key = f"{self._s._ns}:{USAGE_PREFIX}{username}"
        async with self._s._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "requests", requests)
            pipe.hincrby(key, "input_tokens", input_tokens)
            pipe.hincrby(key, "output_tokens", output_tokens)
            await pipe.execute()

    @fail_closed
    async def reserve(self, username: str, tokens: int, budget: int) -> bool:
        key = f"{self._s._ns}:{USAGE_PREFIX}{username}"
        reply = await self._s._redis.eval(_RESERVE, 1, key, tokens, budget)
        return bool(int(reply))

    @fail_closed
    async def release(self, username: str, tokens: int) -> None:
        key = f"{self._s._ns}:{USAGE_PREFIX}{username}"
        await self._s._redis.eval(_RELEASE, 1, key, tokens)

    @fail_closed
    async def get(self, username: str) -> Usage:
        found = await self._s._redis.hmget(
            f"{self._s._ns}:{USAGE_PREFIX}{username}", ["requests", "input_tokens", "output_tokens"]
        )
        requests, inputs, outputs = (int(text(v)) if v is not None else 0 for v in found)
        return Usage(requests, inputs, outputs)
