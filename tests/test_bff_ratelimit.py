"""LimitsRateLimiter: the BFF's limits on the ``limits`` library, in memory and on a real
redis-server. The library reads the wall clock, so windows here are one real second long."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
import redis
import redis.asyncio
from limits.aio.storage import MemoryStorage

from patterns.bff import Argon2Parameters, BffSettings, UserDirectory, create_app
from patterns.bff.ratelimit import (
    NOT_COUNTED,
    HousekeptMemoryStorage,
    LimitsRateLimiter,
    window_of,
)
from patterns.bff.settings import RateLimit
from patterns.bff.stores import Decision, memory_stores
from patterns.errors import StoreUnavailable
from patterns.serving import BackgroundServer, free_port

T = TypeVar("T")
ONE_SECOND = RateLimit(per_minute=180, burst=3)  # 3 in any 1 s window


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


async def hits(limiter: LimitsRateLimiter, key: str, limit: RateLimit, n: int) -> list[Decision]:
    return [await limiter.hit(key, limit, 0.0) for _ in range(n)]


@pytest.mark.parametrize(
    ("limit", "amount", "seconds"),
    [
        (RateLimit(30, 10), 10, 20),  # the default message limit: 10 in any 20 s
        (RateLimit(10, 5), 5, 30),
        (RateLimit(7, 5), 5, 43),  # 42.9 s rounded up: never faster than 7 a minute
        (RateLimit(6000, 10), 10, 1),  # under a second: one-second window, 10 a second
        (RateLimit(1, 2), 2, 120),
    ],
)
def test_a_rate_limit_maps_to_a_moving_window(limit: RateLimit, amount: int, seconds: int) -> None:
    item = window_of(limit)
    assert (item.amount, item.get_expiry()) == (amount, seconds)
    assert item.amount * 60 / item.get_expiry() <= limit.per_minute  # long-run rate kept


def test_memory_allows_a_burst_then_refuses_until_the_window_moves() -> None:
    limiter = LimitsRateLimiter()

    async def scenario() -> tuple[list[Decision], Decision, Decision]:
        first = await hits(limiter, "messages:alice", ONE_SECOND, 4)
        other = await limiter.hit("messages:bob", ONE_SECOND, 0.0)  # limits are per key
        assert other.allowed
        await asyncio.sleep(1.05)
        after = await limiter.hit("messages:alice", ONE_SECOND, 0.0)
        return first, other, after

    first, _, after = run(scenario)
    assert [d.allowed for d in first] == [True, True, True, False]
    assert [d.remaining for d in first] == [NOT_COUNTED] * 3 + [0.0]
    assert 0.5 < first[3].retry_after <= 1.0
    assert after.allowed


def test_now_is_ignored_a_fake_future_does_not_refill() -> None:
    limiter = LimitsRateLimiter()

    async def scenario() -> Decision:
        for _ in range(3):
            await limiter.hit("k", ONE_SECOND, 0.0)
        return await limiter.hit("k", ONE_SECOND, 10**9)

    assert not run(scenario).allowed


def test_cost_is_passed_through_and_a_cost_above_burst_never_fits() -> None:
    limiter = LimitsRateLimiter()

    async def scenario() -> list[Decision]:
        return [
            await limiter.hit("k", ONE_SECOND, 0.0, cost=2),
            await limiter.hit("k", ONE_SECOND, 0.0, cost=2),  # 1 left: refused
            await limiter.hit("k", ONE_SECOND, 0.0, cost=0.5),  # rounded up to one hit
            await limiter.hit("big", ONE_SECOND, 0.0, cost=4),
        ]

    two, refused, half, big = run(scenario)
    assert two.allowed
    assert two.remaining == NOT_COUNTED
    assert not refused.allowed
    assert refused.retry_after > 0
    assert refused.remaining == 1.0
    assert half.allowed

    assert not big.allowed
    assert big.retry_after == 1.0
    with pytest.raises(ValueError, match="positive"):
        run(lambda: LimitsRateLimiter().hit("k", ONE_SECOND, 0.0, cost=0))


def test_the_library_still_has_the_scheduling_hook_the_memory_storage_overrides() -> None:
    # HousekeptMemoryStorage replaces a private, name-mangled method: if a new release of
    # limits renames it, the override would silently stop working. Fail here instead.
    library = MemoryStorage.__dict__.get("_MemoryStorage__schedule_expiry")
    ours = HousekeptMemoryStorage.__dict__.get("_MemoryStorage__schedule_expiry")
    assert asyncio.iscoroutinefunction(library)
    assert ours is not None
    assert ours is not library
    assert isinstance(LimitsRateLimiter().storage, HousekeptMemoryStorage)


def _thread_hops(storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch, calls: int) -> int:
    """How many times ``calls`` hits on one key hand work to a thread."""
    hops = 0
    real = asyncio.to_thread

    async def counting(*args: object, **kwargs: object) -> object:
        nonlocal hops
        hops += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", counting)
    limiter = LimitsRateLimiter(storage)
    busy = RateLimit(per_minute=10**6, burst=10**4)

    async def scenario() -> None:
        for _ in range(calls):
            assert (await limiter.hit("messages:alice", busy, 0.0)).allowed
            await asyncio.sleep(0)  # let a scheduled clean-up run, as a server would

    run(scenario)
    return hops


def test_memory_housekeeping_runs_at_most_once_a_second_not_on_every_hit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The library's own storage hops to a worker thread on nearly every hit (the cost
    # docs/benchmarks.md measured); ours cleans up once per interval.
    assert _thread_hops(MemoryStorage(), monkeypatch, 40) >= 20
    assert _thread_hops(HousekeptMemoryStorage(), monkeypatch, 40) <= 1


def test_memory_housekeeping_still_frees_windows_that_have_expired() -> None:
    storage = HousekeptMemoryStorage(interval=0.2)
    limiter = LimitsRateLimiter(storage)

    async def scenario() -> tuple[bool, bool]:
        await hits(limiter, "messages:alice", ONE_SECOND, 3)
        held = any("alice" in key for key in storage.events)
        await asyncio.sleep(1.3)  # alice's window is over, and so is the interval
        await limiter.hit("messages:bob", ONE_SECOND, 0.0)  # any hit schedules clean-up
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not any("alice" in key for key in storage.events):
                break
        return held, any("alice" in key for key in storage.events)

    held, still_held = run(scenario)
    assert held
    assert not still_held


def test_two_limiters_on_one_redis_share_the_count(redis_url: str) -> None:
    async def scenario() -> tuple[list[bool], Decision, Decision]:
        clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
        try:
            first, second = (LimitsRateLimiter.on_redis(c, "bff:rl") for c in clients)
            seen = [
                (await (first if i % 2 else second).hit("messages:alice", ONE_SECOND, 0.0)).allowed
                for i in range(4)
            ]
            refused = await first.hit("messages:alice", ONE_SECOND, 0.0)
            await asyncio.sleep(1.05)
            return seen, refused, await second.hit("messages:alice", ONE_SECOND, 0.0)
        finally:
            for client in clients:
                await client.aclose()

    seen, refused, after = run(scenario)
    assert seen == [True, True, True, False]
    assert not refused.allowed
    assert 0 < refused.retry_after <= 1.0
    assert after.allowed
    keys = redis.Redis.from_url(redis_url, decode_responses=True).keys("*")
    assert keys == ["bff:rl:limits/messages:alice/3/1/second"]


def test_redis_keys_expire_with_the_window(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await LimitsRateLimiter.on_redis(client, "ns:rl").hit("k", RateLimit(30, 10), 0.0)
        finally:
            await client.aclose()

    run(scenario)
    ttl = redis.Redis.from_url(redis_url).ttl("ns:rl:limits/k/10/20/second")
    assert 0 < ttl <= 20


def test_redis_down_fails_closed_without_naming_the_url() -> None:
    url = f"redis://:hunter2-CANARY@127.0.0.1:{free_port()}/0"

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            await LimitsRateLimiter.on_redis(client, "bff:rl").hit("k", ONE_SECOND, 0.0)
        finally:
            await client.aclose()

    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as caught:
        run(scenario)
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert "unavailable" in message
    assert "ConnectionError" in message
    assert "hunter2" not in message
    assert "127.0.0.1" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_repr_names_the_strategy_and_store() -> None:
    assert repr(LimitsRateLimiter()) == "LimitsRateLimiter(moving window, memory)"


def test_a_bff_whose_limiter_redis_is_down_answers_503_and_logs_no_url(
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://:hunter2-CANARY@127.0.0.1:{free_port()}/0"
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    memory = memory_stores(60, 600)
    stores = dataclasses.replace(memory, limiter=LimitsRateLimiter.on_redis(client, "bff:rl"))
    users = UserDirectory(Argon2Parameters(memory_kib=8 * 1024, iterations=1))
    users.add("alice", "alice's long password")
    settings = BffSettings(upstream_url=f"http://127.0.0.1:{free_port()}")
    with BackgroundServer(create_app(settings, users=users, stores=stores)) as server:
        login = httpx.post(
            f"{server.url}/auth/login",
            json={"username": "alice", "password": "alice's long password"},
            headers={"origin": server.url},
        )
    assert login.status_code == 503
    assert login.json()["error"]["type"] == "api_error"
    assert login.headers["retry-after"] == "5"
    assert "set-cookie" not in login.headers
    assert "hunter2" not in login.text
    logged = capfd.readouterr().err  # the server's log lines (uvicorn's configuration)
    assert "rate-limit store (redis) is unavailable (ConnectionError)" in logged
    assert "hunter2" not in logged
