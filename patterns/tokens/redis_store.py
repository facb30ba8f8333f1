"""A token store in Redis, shared by every proxy replica.

Each redemption is one round trip: a Lua script checks revocation, expiry, uses and scope and
counts the use in the same server-side step, so 200 concurrent requests on a token with 100
uses get exactly 100 grants, whichever replicas they reach. Redis drops a record when its TTL
runs out (no timers anywhere); the script also compares the caller's clock with the record's
expiry, so an injected clock works the same against Redis as in memory.

If Redis cannot be reached, every call raises :class:`~patterns.errors.StoreUnavailable` and
the proxy refuses requests: a token that cannot be checked is not accepted.

It is also the replicas' :class:`~patterns.tokens.key_refs.KeyRefRegistry`: the
organisation-key refs they minted under and the refs a leak response revoked live in Redis,
next to the tokens, and never expire, so a replica restarted after a leak still refuses the
old tokens. The redemption script refuses a record whose ``key_ref`` is revoked in the same
step that counts the use, and so is a token redeemed on a replica whose current key (the
one it would forward with) is revoked: every replica agrees the moment the revocation is
written, whatever its keyring last read.

Revoked refs must never disappear, and two Redis settings decide that (review finding F6):

* **eviction**: ``maxmemory-policy`` must be ``noeviction`` (Redis's default: a full Redis
  refuses writes, and the proxy refuses requests). An ``allkeys-*`` policy may evict
  ``refs:revoked`` (no TTL) and bring a leaked key back; a ``volatile-*`` policy may evict a
  token's indexes (``id:`` and ``u:``, which have TTLs and are read far less often than the
  record), and then revoking that token, or its user's tokens, finds nothing while the token
  still works (review finding, reproduced with ``volatile-lru``).
  :meth:`RedisTokenStore.check_durability` refuses every policy but ``noeviction``: a keyring
  will not join such a store and ``serve token-proxy`` exits 2. The redemption script also
  refuses a token whose indexes no longer point at it, so a token that revocation could not
  reach is never served, whatever the policy.
* **persistence**: a Redis restarted without RDB snapshots or AOF forgets the sets. Live
  replicas write back the refs they know on their next registry read (the keyring notices
  the loss); a replica started later does not know them. ``check_durability`` warns.

``CONFIG GET`` is often refused (an ACL without ``+config``, a managed service); then the
check cannot see either setting and says so instead of guessing.

Which users it issued tokens to is kept for incident response
(:meth:`RedisTokenStore.issued_to`: "revoked 0 tokens" is not "never knew that user"): each
mint sets ``{ns}:seen:{user_id}`` to the time until which the user is remembered
(``user_retention`` after their last token, and never before that token expires), with the
same expiry in Redis, so every replica sees it and nothing outlives the retention. If one
were lost early the user would read as unknown, which fails closed.

Keys: ``{ns}:t:{sha256}`` (hash: the record), ``{ns}:id:{token_id}`` (the token's hash, for
revocation), ``{ns}:u:{user_id}`` (set of token ids), ``{ns}:seen:{user_id}`` (see above),
``{ns}:refs:known`` and ``{ns}:refs:revoked`` (sets of key refs). The revocation scripts
build key names inside Lua, so this layout suits a single Redis or a replicated primary, not
Cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, cast

from patterns.errors import ConfigurationError, StoreUnavailable
from patterns.tokens.key_refs import KeyRefs
from patterns.tokens.model import DEFAULT_USER_RETENTION, Rejection, TokenRecord

if TYPE_CHECKING:
    import redis

__all__ = ["RedisTokenStore"]

# KEYS: record, token id, user's token ids, user seen. ARGV: ttl ms, token hash, token id,
# user remembered until (caller's clock), for how many ms, then the record's fields.
_ADD: Final = """
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
if tonumber(ARGV[4]) > (tonumber(redis.call('GET', KEYS[4]) or '') or 0) then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
end
return 1
"""

# Same rules, same order as TokenRecord.check, after the key-ref revocation check that
# MemoryTokenStore makes too.
_CONSUME: Final = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {'unknown'} end
local r = {}
for i = 1, #fields, 2 do r[fields[i]] = fields[i + 1] end
if r.revoked == '1' then return {'revoked'} end
-- Revocation finds a token through its indexes; one they no longer point at (evicted or
-- lost) could not be revoked, so it is not served.
if redis.call('GET', ARGV[5] .. ':id:' .. r.token_id) ~= ARGV[6] then return {'revoked'} end
if redis.call('SISMEMBER', ARGV[5] .. ':u:' .. r.user_id, r.token_id) == 0 then
  return {'revoked'}
end
if r.key_ref and redis.call('SISMEMBER', KEYS[2], r.key_ref) == 1 then return {'revoked'} end
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 1 then return {'revoked'} end
if tonumber(ARGV[1]) >= tonumber(r.expires_at) then return {'expired'} end
if tonumber(r.uses) >= tonumber(r.max_uses) then return {'exhausted'} end
if r.models ~= '' then
  local allowed = false
  for _, m in ipairs(cjson.decode(r.models)) do
    if ARGV[2] ~= '' and m == ARGV[2] then allowed = true end
  end
  if not allowed then return {'model'} end
end
if r.max_tokens ~= '' and ARGV[3] ~= '' and tonumber(ARGV[3]) > tonumber(r.max_tokens) then
  return {'max_tokens'}
end
r.uses = tostring(redis.call('HINCRBY', KEYS[1], 'uses', 1))
local out = {'ok'}
for k, v in pairs(r) do out[#out + 1] = k; out[#out + 1] = v end
return out
"""

_REVOKE_ONE: Final = """
local function revoke(ns, token_id)
  local h = redis.call('GET', ns .. ':id:' .. token_id)
  if not h then return 0 end
  local key = ns .. ':t:' .. h
  if redis.call('HGET', key, 'revoked') ~= '0' then return 0 end
  redis.call('HSET', key, 'revoked', '1')
  return 1
end
"""

_REVOKE: Final = _REVOKE_ONE + "return revoke(ARGV[1], ARGV[2])"

_REVOKE_USER: Final = (
    _REVOKE_ONE
    + """
local count = 0
for _, token_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  count = count + revoke(ARGV[1], token_id)
end
redis.call('DEL', KEYS[1])
return count
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTokenStore:
    """Token records in Redis. ``RedisTokenStore.from_url("redis://127.0.0.1:6379/0")``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "akp:tokens",
        user_retention: float = DEFAULT_USER_RETENTION,
    ) -> None:
        if not user_retention > 0:
            raise ValueError("user_retention must be positive")
        self._client = client
        self._ns = namespace
        self._retention = float(user_retention)
        self._add = client.register_script(_ADD)
        self._consume = client.register_script(_CONSUME)
        self._revoke = client.register_script(_REVOKE)
        self._revoke_user = client.register_script(_REVOKE_USER)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "akp:tokens",
        timeout: float = 2.0,
        user_retention: float = DEFAULT_USER_RETENTION,
    ) -> RedisTokenStore:
        """Connect lazily to ``url`` with short timeouts, so an outage fails fast."""
        try:
            import redis
        except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
            raise ConfigurationError(
                "RedisTokenStore needs the redis package: pip install redis"
            ) from None
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, namespace=namespace, user_retention=user_retention)

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        import redis

        try:
            return script(keys=keys, args=args)
        except redis.RedisError as error:
            raise StoreUnavailable(
                "the token store (Redis) cannot be reached; requests are refused until it "
                f"is back ({type(error).__name__})"
            ) from None

    def add(self, token_hash: str, record: TokenRecord, now: float) -> None:
        ttl_ms = max(1, int((record.expires_at - now) * 1000))
        until = max(now + self._retention, record.expires_at)
        seen_ms = max(1, int((until - now) * 1000))
        fields = [item for pair in record.to_fields().items() for item in pair]
        keys = [
            f"{self._ns}:t:{token_hash}",
            f"{self._ns}:id:{record.token_id}",
            f"{self._ns}:u:{record.user_id}",
            f"{self._ns}:seen:{record.user_id}",
        ]
        args = [ttl_ms, token_hash, record.token_id, repr(until), seen_ms, *fields]
        self._call(self._add, keys, args)

    def consume(
        self,
        token_hash: str,
        now: float,
        model: str | None,
        max_tokens: int | None,
        current_ref: str | None = None,
    ) -> TokenRecord | Rejection:
        """One round trip: refused as "revoked" when the token's ref or ``current_ref`` (the
        redeeming replica's current key) is revoked, in the same step that counts the use."""
        args = [
            repr(now),
            model or "",
            "" if max_tokens is None else str(max_tokens),
            current_ref or "",
            self._ns,
            token_hash,
        ]
        keys = [f"{self._ns}:t:{token_hash}", f"{self._ns}:refs:revoked"]
        reply = self._call(self._consume, keys, args)
        status = _text(reply[0])
        if status != "ok":
            return cast(Rejection, status)
        pairs = [_text(item) for item in reply[1:]]
        return TokenRecord.from_fields(dict(zip(pairs[::2], pairs[1::2], strict=True)))

    def get(self, token_id: str) -> TokenRecord | None:
        import redis

        try:
            token_hash = self._client.get(f"{self._ns}:id:{token_id}")
            if token_hash is None:
                return None
            raw = self._client.hgetall(f"{self._ns}:t:{_text(token_hash)}")
        except redis.RedisError:
            raise StoreUnavailable("the token store (Redis) cannot be reached") from None
        if not raw:
            return None
        return TokenRecord.from_fields({_text(k): _text(v) for k, v in raw.items()})

    def revoke(self, token_id: str) -> bool:
        return bool(self._call(self._revoke, [], [self._ns, token_id]))

    def revoke_user(self, user_id: str) -> int:
        return int(self._call(self._revoke_user, [f"{self._ns}:u:{user_id}"], [self._ns]))

    def issued_to(self, user_id: str, now: float) -> bool:
        """Whether any replica issued ``user_id`` a token within the retention, or one is
        live (also for tokens minted before the store remembered users); one round trip."""
        import redis

        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(f"{self._ns}:seen:{user_id}")
            pipe.exists(f"{self._ns}:u:{user_id}")
            until, live = pipe.execute()
        except redis.RedisError:
            raise StoreUnavailable("the token store (Redis) cannot be reached") from None
        try:
            remembered = until is not None and float(_text(until)) > now
        except ValueError:  # not written by this store: it proves nothing
            remembered = False
        return remembered or bool(live)

    def key_refs(self) -> KeyRefs:
        """The refs every replica registered or revoked (one round trip)."""
        import redis

        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.smembers(f"{self._ns}:refs:known")
            pipe.smembers(f"{self._ns}:refs:revoked")
            known, revoked = pipe.execute()
        except redis.RedisError:
            raise StoreUnavailable("the token store (Redis) cannot be reached") from None
        return KeyRefs(frozenset(map(_text, known)), frozenset(map(_text, revoked)))

    def check_durability(self) -> list[str]:
        """Check that Redis keeps revocations: raise :class:`ConfigurationError` for any
        eviction policy but ``noeviction``; return warnings (no persistence, or ``CONFIG``
        refused, so nothing could be checked). Raises :class:`StoreUnavailable` if Redis is
        down."""
        import redis

        try:
            pipe = self._client.pipeline(transaction=False)
            for name in ("maxmemory-policy", "save", "appendonly"):
                pipe.config_get(name)
            policy, save, appendonly = (
                _text(next(iter(answer.values()), "")) if answer else ""
                for answer in pipe.execute()
            )
        except redis.ResponseError:  # NOPERM from an ACL, or CONFIG renamed or disabled
            return [
                "cannot read Redis's configuration (CONFIG is refused for this user or by the "
                "service), so it is unchecked that revoked key refs survive: make sure "
                "maxmemory-policy is noeviction, and that persistence (AOF or RDB) is on"
            ]
        except redis.RedisError:
            raise StoreUnavailable("the token store (Redis) cannot be reached") from None
        if policy.startswith("allkeys-"):
            raise ConfigurationError(
                f"Redis's maxmemory-policy is {policy}: under memory pressure it may evict the "
                "revoked organisation-key refs (they have no TTL), and a leaked key would be "
                "served again. Set maxmemory-policy to noeviction for the token store's Redis"
            )
        if policy and policy != "noeviction":
            raise ConfigurationError(
                f"Redis's maxmemory-policy is {policy}: under memory pressure it may evict a "
                "token's revocation indexes, and revoking that token or its user would miss "
                "it. Set maxmemory-policy to noeviction for the token store's Redis"
            )
        warnings = []
        if not policy:
            warnings.append("Redis did not report its maxmemory-policy; it is unchecked")
        if save.strip() == "" and appendonly != "yes":
            warnings.append(
                "Redis persists nothing (no RDB save points, appendonly no): after a Redis "
                "restart, revoked key refs are known only to the replicas still running. "
                "Turn on AOF (appendonly yes) or RDB snapshots"
            )
        return warnings

    def record_key_refs(self, *, known: Iterable[str] = (), revoked: Iterable[str] = ()) -> None:
        """Add refs to the shared sets, both in one transaction; never removes any."""
        import redis

        known, revoked = list(known), list(revoked)
        if not known and not revoked:
            return
        try:
            pipe = self._client.pipeline(transaction=True)
            if known:
                pipe.sadd(f"{self._ns}:refs:known", *known)
            if revoked:
                pipe.sadd(f"{self._ns}:refs:revoked", *revoked)
            pipe.execute()
        except redis.RedisError:
            raise StoreUnavailable(
                "the token store (Redis) cannot be reached; the key refs were not recorded"
            ) from None
