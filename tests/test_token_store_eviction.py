"""The token store's Redis must not evict: a review showed ``volatile-lru`` evicting a token's
indexes first (they are read only at mint and revoke), after which revoking the user found
nothing and the token still worked. Both defences, on a real redis-server: the policy is
refused, and a token its indexes no longer reach is never served."""

from __future__ import annotations

import time

import pytest
import redis

from patterns.errors import ConfigurationError
from patterns.tokens.model import TokenRecord
from patterns.tokens.redis_store import RedisTokenStore
from tests import servers

NS = "akp:tokens"


def _mint(store: RedisTokenStore, token_id: str, user: str, now: float) -> str:
    token_hash = f"hash-{token_id}"
    record = TokenRecord(token_id, user, created_at=now, expires_at=now + 600, max_uses=100)
    store.add(token_hash, record, now)
    return token_hash


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "allkeys-lru"])
def test_every_evicting_policy_is_refused(policy: str) -> None:
    with (
        servers.own_redis("--maxmemory-policy", policy) as url,
        pytest.raises(ConfigurationError, match=policy) as refused,
    ):
        RedisTokenStore.from_url(url).check_durability()
    assert "noeviction" in str(refused.value)


def test_a_token_whose_indexes_were_lost_is_refused_not_served(redis_url: str) -> None:
    store = RedisTokenStore.from_url(redis_url)
    now = time.time()
    kept = _mint(store, "tok_kept", "alice", now)
    no_user_index = _mint(store, "tok_a", "bob", now)
    no_id_index = _mint(store, "tok_b", "carol", now)
    with redis.Redis.from_url(redis_url) as client:
        client.delete(f"{NS}:u:bob")  # what volatile-lru evicted in the review
        client.delete(f"{NS}:id:tok_b")
    assert isinstance(store.consume(kept, now, None, None), TokenRecord)
    assert store.consume(no_user_index, now, None, None) == "revoked"
    assert store.consume(no_id_index, now, None, None) == "revoked"


def test_an_index_pointing_at_another_token_does_not_vouch_for_this_one(redis_url: str) -> None:
    store = RedisTokenStore.from_url(redis_url)
    now = time.time()
    first = _mint(store, "tok_same", "alice", now)
    with redis.Redis.from_url(redis_url) as client:
        client.set(f"{NS}:id:tok_same", "hash-something-else")
    assert store.consume(first, now, None, None) == "revoked"
