"""TokenService on both stores: the same contract in memory and in a real Redis."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest

from patterns.errors import InvalidRequestError, StoreUnavailable, TokenRejected, TokenScopeError
from patterns.scanning import find_secrets, redact
from patterns.serving import free_port
from patterns.tokens import MemoryTokenStore, RedisTokenStore, TokenService
from patterns.tokens.model import hash_token


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", "redis"])
def store_factory(request: pytest.FixtureRequest) -> Callable[[], object]:
    if request.param == "memory":
        return MemoryTokenStore
    url = request.getfixturevalue("redis_url")
    return lambda: RedisTokenStore.from_url(url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store_factory: Callable[[], object], clock: Clock) -> TokenService:
    return TokenService(store_factory(), ttl=900, max_uses=3, clock=clock)  # type: ignore[arg-type]


def reason(error: pytest.ExceptionInfo[TokenRejected]) -> str:
    return error.value.reason  # type: ignore[attr-defined, no-any-return]


def test_minted_tokens_are_long_random_prefixed_and_hidden_in_repr(service: TokenService) -> None:
    first, second = service.mint("alice"), service.mint("alice")
    assert re.fullmatch(r"akp_tmp_[A-Za-z0-9_-]{43}", first.token)
    assert first.token != second.token
    assert first.token_id != second.token_id
    assert first.token not in repr(first)
    assert first.expires_at == service.clock() + 900
    assert [m.rule.id for m in find_secrets(first.token)] == ["patterns-temporary-token"]
    assert first.token not in redact(f"x-api-key: {first.token}")


def test_uses_count_down_then_run_out(service: TokenService) -> None:
    minted = service.mint("alice")
    assert [service.redeem(minted.token).remaining for _ in range(3)] == [2, 1, 0]
    with pytest.raises(TokenRejected) as error:
        service.redeem(minted.token)
    assert reason(error) == "exhausted"
    assert "used up" in str(error.value)
    assert minted.token not in str(error.value)


def test_expiry_follows_the_injected_clock(service: TokenService, clock: Clock) -> None:
    minted = service.mint("alice", ttl=60)
    clock.advance(59.9)
    assert service.redeem(minted.token).user_id == "alice"
    clock.advance(0.1)
    with pytest.raises(TokenRejected) as error:
        service.redeem(minted.token)
    assert reason(error) == "expired"


def test_revoke_one_and_revoke_a_user(service: TokenService) -> None:
    a1, a2, b1 = service.mint("alice"), service.mint("alice"), service.mint("bob")
    assert service.revoke(a1.token_id) is True
    assert service.revoke(a1.token_id) is False
    assert service.revoke("tok_unknown") is False
    with pytest.raises(TokenRejected) as error:
        service.redeem(a1.token)
    assert reason(error) == "revoked"
    assert service.revoke_user("alice") == 1  # a1 was already revoked
    with pytest.raises(TokenRejected):
        service.redeem(a2.token)
    assert service.redeem(b1.token).user_id == "bob"
    assert service.mint("alice").token  # new tokens work after a revocation


def test_scope_violations_consume_no_use(service: TokenService) -> None:
    minted = service.mint("alice", models=["claude-haiku-4-5"], max_tokens=256)
    with pytest.raises(TokenScopeError) as error:
        service.redeem(minted.token, model="claude-opus-4-1", max_tokens=10)
    assert reason(error) == "model"
    with pytest.raises(TokenScopeError) as error:
        service.redeem(minted.token, model=None)
    assert reason(error) == "model"
    with pytest.raises(TokenScopeError) as error:
        service.redeem(minted.token, model="claude-haiku-4-5", max_tokens=257)
    assert reason(error) == "max_tokens"
    grant = service.redeem(minted.token, model="claude-haiku-4-5", max_tokens=256)
    assert grant.remaining == 2
    assert grant.models == ("claude-haiku-4-5",)


def test_status_reports_uses(service: TokenService) -> None:
    minted = service.mint("alice")
    service.redeem(minted.token)
    record = service.status(minted.token_id)
    assert record is not None
    assert (record.uses, record.max_uses, record.user_id) == (1, 3, "alice")
    assert service.status("tok_missing") is None


@pytest.mark.parametrize(
    "garbage", ["", "akp_tmp_short", "sk-ant-api03-not-a-token", "akp_tmp_" + "A" * 44]
)
def test_malformed_tokens_are_rejected(service: TokenService, garbage: str) -> None:
    with pytest.raises(TokenRejected) as error:
        service.redeem(garbage)
    assert reason(error) == "unknown"


def test_unknown_well_formed_token(service: TokenService) -> None:
    with pytest.raises(TokenRejected) as error:
        service.redeem("akp_tmp_" + "B" * 43)
    assert reason(error) == "unknown"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 0},
        {"ttl": 90_000},
        {"max_uses": 0},
        {"max_uses": True},
        {"models": []},
        {"models": [""]},
        {"max_tokens": 0},
    ],
)
def test_mint_bounds(service: TokenService, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        service.mint("alice", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("user", ["", "x" * 257, "line\nbreak"])
def test_user_id_bounds(service: TokenService, user: str) -> None:
    with pytest.raises(InvalidRequestError, match="user_id"):
        service.mint(user)


def test_concurrent_redemptions_never_exceed_max_uses(
    store_factory: Callable[[], object], clock: Clock
) -> None:
    service = TokenService(store_factory(), max_uses=100, clock=clock)  # type: ignore[arg-type]
    minted = service.mint("alice")
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker() -> None:
        start.wait()
        for _ in range(10):
            try:
                service.redeem(minted.token)
                ok = True
            except TokenRejected:
                ok = False
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 200
    assert results.count(True) == 100


def test_memory_store_forgets_expired_tokens_without_timers(clock: Clock) -> None:
    store = MemoryTokenStore()
    service = TokenService(store, ttl=10, clock=clock)
    for _ in range(50):
        service.mint("alice")
    assert len(store) == 50
    clock.advance(11)
    survivor = service.mint("bob")
    assert len(store) == 1
    assert threading.active_count() < 10  # no timer threads
    assert service.redeem(survivor.token).user_id == "bob"


def test_memory_store_dump_holds_no_token() -> None:
    store = MemoryTokenStore()
    minted = TokenService(store).mint("alice")
    dump = repr(store.dump())
    assert minted.token not in dump
    assert hash_token(minted.token) in dump


def _redis_everything(url: str) -> Iterator[str]:
    import redis

    with redis.Redis.from_url(url, decode_responses=True) as client:
        for key in client.scan_iter():
            yield key
            kind = client.type(key)
            if kind == "hash":
                yield repr(client.hgetall(key))
            elif kind == "string":
                yield str(client.get(key))
            elif kind == "set":
                yield repr(client.smembers(key))


def test_redis_dump_holds_no_token_and_records_expire(redis_url: str, clock: Clock) -> None:
    import redis

    service = TokenService(RedisTokenStore.from_url(redis_url), ttl=30, clock=clock)
    minted = service.mint("alice")
    everything = "\n".join(_redis_everything(redis_url))
    assert minted.token not in everything
    assert minted.token[len("akp_tmp_") :] not in everything
    with redis.Redis.from_url(redis_url) as client:
        ttl = client.pttl(f"akp:tokens:t:{hash_token(minted.token)}")
    assert 0 < ttl <= 30_000


def test_unreachable_redis_fails_closed(clock: Clock) -> None:
    store = RedisTokenStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    service = TokenService(store, clock=clock)
    with pytest.raises(StoreUnavailable, match="refused until it is back"):
        service.mint("alice")
    with pytest.raises(StoreUnavailable):
        service.redeem("akp_tmp_" + "C" * 43)
    with pytest.raises(StoreUnavailable):
        service.revoke_user("alice")
