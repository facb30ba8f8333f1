"""Sessions in Redis: one hash per session and a per-user index, changed by Lua scripts.

Why scripts, and why the caller's clock: see :mod:`patterns.bff.redis_stores`.
:class:`RedisStores` also holds the connection pool and the key names that the key and
usage stores (:mod:`patterns.bff.redis_records`) share.

The per-user index stays bounded: logout and expiry remove members, its expiry is pushed to
the absolute timeout at each sign-in (no session outlives that), and a user holds at most
``max_sessions_per_user`` sessions (default 50): a sign-in beyond that first drops members
whose session Redis has already expired, then ends the oldest sessions (so the script's scan
is bounded too). Every request on a session also adds it to the index (and pushes the
index's expiry to the session's absolute deadline if it was shorter): a session created by
a version before the index, or by a replica not yet upgraded during a rolling deploy, is
indexed on its next request. One that makes no request after the upgrade is not, until it
expires (at most the absolute timeout): ending a user's sessions during that window cannot
see it. Ending a user's sessions is one script, and so is creating one, so Redis runs them
one after the other: a session created concurrently is either ended or created after the
end. The scripts name keys they compute from the index, so they need one Redis (or a primary
with replicas), not Redis Cluster.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

from patterns.bff.redis_common import (
    KEY_PREFIX,
    MARKER,
    META_KEY,
    SESSION_PREFIX,
    USAGE_PREFIX,
    USER_SESSIONS_PREFIX,
    USERS_KEY,
    chunks,
    fail_closed,
    text,
)
from patterns.bff.stores import (
    DEFAULT_MAX_SESSIONS_PER_USER,
    Session,
    hash_session_id,
    new_session_id,
)
from patterns.errors import ConfigurationError

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisStores"]

# KEYS: session, user index, marker, users. ARGV: user, csrf, now, idle ms, absolute ms,
# session hash, session key prefix, most sessions per user, marker value. Returns how many
# of the user's oldest sessions were ended to stay under the cap.
_CREATE: Final = """
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'csrf', ARGV[2], 'created', ARGV[3], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local cap, evicted = tonumber(ARGV[8]), 0
if redis.call('SCARD', KEYS[2]) >= cap then
  local live = {}
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local created = redis.call('HGET', ARGV[7] .. member, 'created')
    if created then
      table.insert(live, {tonumber(created), member})
    else
      redis.call('SREM', KEYS[2], member)
    end
  end
  if #live >= cap then
    table.sort(live, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    for i = 1, #live - cap + 1 do
      redis.call('DEL', ARGV[7] .. live[i][2])
      redis.call('SREM', KEYS[2], live[i][2])
      evicted = evicted + 1
    end
  end
end
redis.call('SADD', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[9], 'NX')
redis.call('SADD', KEYS[4], ARGV[1])
return evicted
"""

# KEYS: session, marker. ARGV: now, idle, absolute, user-index key prefix, session hash,
# marker value. A live session is (re)added to its user's index, whose expiry is pushed to
# the session's absolute deadline if shorter: sessions from before the index get indexed.
_TOUCH: Final = """
local f = redis.call('HMGET', KEYS[1], 'user', 'csrf', 'created', 'seen')
if not f[1] then return false end
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local created, seen = tonumber(f[3]), tonumber(f[4])
local index = ARGV[4] .. f[1]
if now >= created + absolute or now >= seen + idle then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', index, ARGV[5])
  return false
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
local ttl = math.min(idle, created + absolute - now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl * 1000)))
redis.call('SADD', index, ARGV[5])
local left = math.max(1, math.ceil((created + absolute - now) * 1000))
if redis.call('PTTL', index) < left then redis.call('PEXPIRE', index, left) end
redis.call('SET', KEYS[2], ARGV[6], 'NX')
return {f[1], f[2], f[3], ARGV[1]}
"""

# KEYS: session. ARGV: user-index key prefix, session hash.
_DELETE: Final = """
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. user, ARGV[2])
return 1
"""

# KEYS: user index. ARGV: session key prefix.
_END_USER: Final = """
local ended = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return ended
"""


class RedisStores:
    """One Redis connection pool and the four stores on it."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        idle_timeout: float,
        absolute_timeout: float,
        namespace: str = "bff",
        max_sessions_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER,
    ) -> None:
        if max_sessions_per_user < 1:
            raise ConfigurationError("max_sessions_per_user must be at least 1")
        self._redis = client
        self._ns = namespace
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._cap = max_sessions_per_user
        self._meta = f"{namespace}:{META_KEY}"
        self._users = f"{namespace}:{USERS_KEY}"
        self._create = client.register_script(_CREATE)
        self._touch = client.register_script(_TOUCH)
        self._delete = client.register_script(_DELETE)
        self._end_user = client.register_script(_END_USER)
        self._sessions = f"{namespace}:{SESSION_PREFIX}"
        self._user_sessions = f"{namespace}:{USER_SESSIONS_PREFIX}"

    # -- sessions ------------------------------------------------------------------------
    @fail_closed
    async def create(self, username: str, now: float) -> tuple[str, Session]:
        session_id = new_session_id()
        csrf = secrets.token_urlsafe(32)
        digest = hash_session_id(session_id)
        idle_ms = max(1, int(self._idle * 1000))
        absolute_ms = max(1, int(self._absolute * 1000))
        await self._create(
            keys=[self._sessions + digest, self._user_sessions + username, self._meta, self._users],
            args=[
                username,
                csrf,
                repr(now),
                idle_ms,
                absolute_ms,
                digest,
                self._sessions,
                self._cap,
                MARKER,
            ],
        )
        return session_id, Session(username, csrf, now, now)

    @fail_closed
    async def get(self, session_id: str, now: float) -> Session | None:
        digest = hash_session_id(session_id)
        found = await self._touch(
            keys=[self._sessions + digest, self._meta],
            args=[repr(now), self._idle, self._absolute, self._user_sessions, digest, MARKER],
        )
        if not found:
            return None
        user, csrf, created, seen = (text(value) for value in found)
        return Session(user, csrf, float(created), float(seen))

    @fail_closed
    async def delete(self, session_id: str) -> bool:
        digest = hash_session_id(session_id)
        deleted = await self._delete(
            keys=[self._sessions + digest], args=[self._user_sessions, digest]
        )
        return bool(int(deleted))

    @fail_closed
    async def end_user_sessions(self, username: str) -> int:
        ended = await self._end_user(keys=[self._user_sessions + username], args=[self._sessions])
        return int(ended)

    @fail_closed
    async def end_unindexed_sessions(self, username: str, *, batch: int = 1000) -> int:
        """Delete ``username``'s sessions that are not in the index, found by scanning every
        session key: those created before the index existed, or by a replica not yet
        upgraded, that made no request since. Costs a pass over all sessions (SCAN, in
        batches; a session deleted by another client in between is simply not counted), so
        incident response runs it only when asked (``--scan-sessions``)."""
        ended = 0
        async for chunk in chunks(self._redis.scan_iter(match=self._sessions + "*", count=batch)):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hget(key, "user")
                owners = await pipe.execute()
            mine = [
                key
                for key, owner in zip(chunk, owners, strict=True)
                if owner is not None and text(owner) == username
            ]
            if mine:
                ended += int(await self._redis.delete(*mine))
        return ended

    @fail_closed
    async def user_sessions(self, username: str) -> int:
        """How many members the user's index holds (sessions Redis expired count until the
        next prune)."""
        return int(await self._redis.scard(self._user_sessions + username))

    # -- for tools working on a running BFF's Redis (incident response) -----------------
    def location(self) -> str:
        """Where these stores live, for a report: host, port, database and namespace. Never
        the URL, which may carry a password."""
        options = self._redis.connection_pool.connection_kwargs
        if options.get("path"):
            place = f"unix:{options['path']}"
        else:
            place = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
        return f"Redis {place} db {options.get('db', 0)}, namespace {self._ns!r}"

    @fail_closed
    async def mark(self) -> None:
        """Write the marker now (idempotent). Sign-in, requests and stored keys write it
        too; a BFF that calls this at start-up is recognisable before its first user."""
        await self._redis.set(self._meta, MARKER, nx=True)

    @fail_closed
    async def verify_location(self) -> None:
        """Raise :class:`ConfigurationError` unless the BFF's marker is here: a tool pointed
        at the wrong database or namespace must not report "nothing to do"."""
        if text(await self._redis.get(self._meta) or b"") != MARKER:
            raise ConfigurationError(
                f"no BFF data in {self.location()} (no {self._meta} marker): check the Redis "
                "URL's database and the namespace (serve bff --redis, --namespace); a BFF "
                "writes the marker at its first sign-in, request or stored key"
            )

    @fail_closed
    async def user_known(self, username: str) -> bool:
        """Whether ``username`` ever signed in or stored a key here (or still has usage, a
        key or indexed sessions from before the users set existed)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self._users, username)
            pipe.exists(
                f"{self._ns}:{USAGE_PREFIX}{username}",
                f"{self._ns}:{KEY_PREFIX}{username}",
                self._user_sessions + username,
            )
            member, found = await pipe.execute()
        return bool(member) or bool(found)
