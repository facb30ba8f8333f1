"""The BFF's per-user session index, in memory and in Redis: ending every session of a user
(incident response), keeping the index bounded (logout, idle and absolute expiry, purges,
Redis TTLs), the atomicity guarantee against concurrent sign-ins, a replayed cookie after
the end (401), and fail-closed errors when Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from patterns.bff import BffSettings, UserDirectory, bff_of, create_app, redis_stores
from patterns.bff.client import BffClient
from patterns.bff.redis_stores import SESSION_PREFIX, USER_SESSIONS_PREFIX, RedisStores
from patterns.bff.stores import MemorySessionStore, SessionStore, hash_session_id
from patterns.errors import StoreUnavailable
from patterns.serving import BackgroundServer, free_port
from patterns.upstream import UpstreamSettings
from patterns.upstream import create_app as create_upstream

PASSWORD = "correct horse battery staple"
IDLE, ABSOLUTE = 300.0, 3600.0
NOW = 1_900_000_000.0


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Builds a fresh session store inside the running event loop (Redis clients bind to it)."""
    if kind == "memory":
        yield lambda: MemorySessionStore(IDLE, ABSOLUTE)
        return
    url = request.getfixturevalue("redis_url")
    yield lambda: redis_stores(url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE).sessions


async def _close(store: SessionStore) -> None:
    if isinstance(store, RedisStores):
        await store._redis.aclose()


def run(factory: Any, scenario: Any) -> Any:
    async def main() -> Any:
        store = factory()
        try:
            return await scenario(store)
        finally:
            await _close(store)

    return asyncio.run(main())


async def _count(store: SessionStore, user: str) -> int:
    counted = store.user_sessions(user)  # type: ignore[attr-defined]
    return int(await counted) if asyncio.iscoroutine(counted) else int(counted)


def test_ending_a_users_sessions_ends_only_theirs_and_is_idempotent(store_factory: Any) -> None:
    async def scenario(store: SessionStore) -> None:
        alice = [(await store.create("alice", NOW))[0] for _ in range(3)]
        bob, _ = await store.create("bob", NOW)
        assert await _count(store, "alice") == 3
        assert await store.end_user_sessions("alice") == 3
        for session_id in alice:
            assert await store.get(session_id, NOW + 1) is None
        assert (await store.get(bob, NOW + 1)) is not None
        assert await store.end_user_sessions("alice") == 0  # a rerun finds nothing
        assert await store.end_user_sessions("nobody") == 0
        assert await _count(store, "alice") == 0
        fresh, _ = await store.create("alice", NOW + 2)  # signing in again works
        assert (await store.get(fresh, NOW + 3)) is not None

    run(store_factory, scenario)


def test_logout_and_expiry_remove_index_members(store_factory: Any) -> None:
    async def scenario(store: SessionStore) -> None:
        ids = [(await store.create("alice", NOW))[0] for _ in range(4)]
        assert await store.delete(ids[0])  # logout
        assert not await store.delete(ids[0])
        assert await _count(store, "alice") == 3
        assert (await store.get(ids[1], NOW + IDLE - 1)) is not None
        assert await store.get(ids[2], NOW + IDLE) is None  # idle expiry, found on read
        assert await _count(store, "alice") == 2
        assert await store.get(ids[1], NOW + ABSOLUTE) is None  # absolute expiry
        assert await _count(store, "alice") == 1
        assert await store.end_user_sessions("alice") == 1  # only the one left

    run(store_factory, scenario)


def test_a_concurrent_sign_in_is_ended_or_created_after(store_factory: Any) -> None:
    """A session is never left alive *and* outside the index: after the race, a second end
    finds every survivor, and between the two ends every session is accounted for once."""

    async def scenario(store: SessionStore) -> None:
        created: list[str] = []

        async def sign_in() -> None:
            session_id, _ = await store.create("alice", NOW)
            created.append(session_id)

        tasks = [asyncio.create_task(sign_in()) for _ in range(45)]  # under the cap of 50
        await asyncio.sleep(0)
        first = await store.end_user_sessions("alice")
        await asyncio.gather(*tasks)
        second = await store.end_user_sessions("alice")
        assert first + second == 45
        for session_id in created:
            assert await store.get(session_id, NOW + 1) is None

    run(store_factory, scenario)


def test_memory_index_is_swept_with_the_sessions() -> None:
    store = MemorySessionStore(IDLE, ABSOLUTE)

    async def scenario() -> None:
        for _ in range(255):
            await store.create("alice", NOW)
        await store.create("bob", NOW + IDLE + 1)  # the 256th sign-in sweeps the expired
        assert len(store) == 1
        assert store.user_sessions("alice") == 0
        assert store._by_user.keys() == {"bob"}

    asyncio.run(scenario())


def test_redis_index_has_a_ttl_and_drops_members_redis_expired(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url, decode_responses=True)

    async def scenario() -> None:
        stores = redis_stores(redis_url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
        try:
            sessions = stores.sessions
            ids = [(await sessions.create("alice", NOW))[0] for _ in range(50)]
            index = f"bff:{USER_SESSIONS_PREFIX}alice"
            assert raw.scard(index) == 50
            assert ABSOLUTE * 1000 - 5000 < raw.pttl(index) <= ABSOLUTE * 1000
            # Redis drops idle sessions by TTL without telling the index: simulate 49 of them.
            for session_id in ids[:49]:
                raw.delete(f"bff:{SESSION_PREFIX}{hash_session_id(session_id)}")
            await sessions.create("alice", NOW)  # 50 members (the cap): prune first
            assert raw.scard(index) == 2
            assert set(raw.smembers(index)) <= {str(k).split(":")[-1] for k in raw.keys("bff:s:*")}
            keys = " ".join(str(k) for k in raw.keys("*"))
            assert not any(session_id in keys for session_id in ids)  # hashes only
        finally:
            if stores.close is not None:
                await stores.close()  # type: ignore[misc]

    asyncio.run(scenario())


def test_redis_down_fails_closed() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario() -> None:
        stores = redis_stores(dead, idle_timeout=IDLE, absolute_timeout=ABSOLUTE, timeout=0.5)
        with pytest.raises(StoreUnavailable, match="unavailable") as caught:
            await stores.sessions.end_user_sessions("alice")
        assert dead not in str(caught.value)

    asyncio.run(scenario())


# -- through the app: a cookie replayed after the end gets 401 ------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_upstream(UpstreamSettings())) as server:
        yield server


@pytest.fixture
def users() -> UserDirectory:
    directory = UserDirectory()
    directory.add("alice", PASSWORD)
    directory.add("bob", PASSWORD)
    return directory


async def _end(app: Any, user: str) -> int:
    return await bff_of(app).stores.sessions.end_user_sessions(user)


def test_a_replayed_cookie_after_the_end_gets_401(
    kind: str, upstream: BackgroundServer, users: UserDirectory, request: pytest.FixtureRequest
) -> None:
    settings = BffSettings(upstream_url=upstream.url)
    stores = None
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        stores = redis_stores(
            url, idle_timeout=settings.idle_timeout, absolute_timeout=settings.absolute_timeout
        )
    app = create_app(settings, users=users, stores=stores)
    with BackgroundServer(app) as server:
        phone = BffClient(server.url).login("alice", PASSWORD)
        laptop = BffClient(server.url).login("alice", PASSWORD)
        bob = BffClient(server.url).login("bob", PASSWORD)
        laptop.logout()
        # The app's own store, reached through bff_of(app), from a separate client of the
        # same Redis (the app's client belongs to the server's event loop).
        if kind == "redis":
            ended = asyncio.run(_end_on_fresh_client(request.getfixturevalue("redis_url")))
        else:
            ended = asyncio.run(_end(app, "alice"))
        assert ended == 1  # the laptop had logged out already
        for client in (phone, laptop):
            response = client.request("GET", "/auth/me")
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "authentication_error"
        replay = httpx.get(
            f"{server.url}/auth/me", headers={"cookie": f"__Host-session={phone.session_id}"}
        )
        assert replay.status_code == 401
        assert bob.me()["username"] == "bob"
        assert BffClient(server.url).login("alice", PASSWORD).me()["username"] == "alice"


async def _end_on_fresh_client(url: str) -> int:
    stores = redis_stores(url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    try:
        return await stores.sessions.end_user_sessions("alice")
    finally:
        if stores.close is not None:
            await stores.close()  # type: ignore[misc]


def test_memory_store_under_threads_leaves_no_session_outside_the_index() -> None:
    """The memory store is shared by the server's worker threads (sync routes, anyio), so
    its guarantee is checked with real threads signing in while the sessions are ended."""
    import threading

    store = MemorySessionStore(IDLE, ABSOLUTE, max_sessions_per_user=1000)  # no cap here
    created: list[str] = []
    lock = threading.Lock()

    def sign_in() -> None:
        for _ in range(50):
            session_id, _ = asyncio.run(store.create("alice", NOW))
            with lock:
                created.append(session_id)

    threads = [threading.Thread(target=sign_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    ended = [asyncio.run(store.end_user_sessions("alice")) for _ in range(20)]
    for thread in threads:
        thread.join(30)
    ended.append(asyncio.run(store.end_user_sessions("alice")))
    assert sum(ended) == 200
    assert len(store) == 0
    assert all(asyncio.run(store.get(sid, NOW + 1)) is None for sid in created)


# -- review findings: sessions from before the index (F4), sessions per user capped (F7d) ---


def test_a_session_from_before_the_index_is_indexed_on_its_next_request(redis_url: str) -> None:
    """A session written without an index entry (the BFF before the index, or a replica not
    yet upgraded during a rolling deploy) joins the index on its next request, so ending
    the user's sessions ends it; the incident response says so."""
    from anyio.from_thread import start_blocking_portal

    from patterns.bff.stores import new_session_id
    from patterns.lifecycle.incidents import NOT_DEPLOYED, bff_user_stores, user_key_leaked

    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    old = new_session_id()
    key = f"bff:{SESSION_PREFIX}{hash_session_id(old)}"
    fields: Any = {"user": "alice", "csrf": "c", "created": repr(NOW), "seen": repr(NOW)}
    raw.hset(key, mapping=fields)  # exactly what the BFF wrote before the index
    raw.pexpire(key, int(IDLE * 1000))
    raw.set("bff:meta", "patterns-bff/1")  # an upgraded replica already marked this Redis
    index = f"bff:{USER_SESSIONS_PREFIX}alice"
    stores = redis_stores(redis_url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    with start_blocking_portal() as portal:
        assert portal.call(stores.sessions.get, old, NOW + 10) is not None  # its next request
        assert raw.smembers(index) == {hash_session_id(old)}
        assert (ABSOLUTE - 10) * 1000 - 5000 < raw.pttl(index) <= (ABSOLUTE - 10) * 1000
        keys, sessions = bff_user_stores(stores, portal=portal)
        report = user_key_leaked("alice", tokens=NOT_DEPLOYED, keys=keys, sessions=sessions)
        assert "[done] end sessions: 1 session(s)" in map(str, report.steps)
        assert report.ok
        assert portal.call(stores.sessions.get, old, NOW + 11) is None
        assert stores.close is not None
        portal.call(stores.close)


def test_a_request_keeps_the_index_ttl_no_shorter_than_the_session(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url, decode_responses=True)

    async def scenario() -> None:
        stores = redis_stores(redis_url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
        try:
            session_id, _ = await stores.sessions.create("alice", NOW)
            index = f"bff:{USER_SESSIONS_PREFIX}alice"
            raw.pexpire(index, 1000)  # shorter than the session's absolute deadline
            assert await stores.sessions.get(session_id, NOW + 5) is not None
            assert raw.pttl(index) > (ABSOLUTE - 5) * 1000 - 5000
        finally:
            assert stores.close is not None
            await stores.close()  # type: ignore[misc]

    asyncio.run(scenario())


@pytest.fixture
def capped_factory(kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    if kind == "memory":
        yield lambda cap: MemorySessionStore(IDLE, ABSOLUTE, max_sessions_per_user=cap)
        return
    url = request.getfixturevalue("redis_url")
    yield (
        lambda cap: (
            redis_stores(
                url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE, max_sessions_per_user=cap
            ).sessions
        )
    )


@pytest.mark.parametrize("cap", [3, 50])
def test_a_sign_in_beyond_the_cap_ends_the_oldest_session(capped_factory: Any, cap: int) -> None:
    async def scenario(store: SessionStore) -> None:
        bob, _ = await store.create("bob", NOW)
        ids = [(await store.create("alice", NOW + i))[0] for i in range(cap + 2)]
        assert await _count(store, "alice") == cap
        assert await store.get(ids[0], NOW + cap + 3) is None  # the two oldest were ended
        assert await store.get(ids[1], NOW + cap + 3) is None
        for session_id in ids[2:]:
            assert await store.get(session_id, NOW + cap + 3) is not None
        assert await store.get(bob, NOW + cap + 3) is not None  # nobody else is touched
        assert await store.end_user_sessions("alice") == cap

    run(lambda: capped_factory(cap), scenario)


def test_the_cap_must_be_positive(redis_url: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemorySessionStore(IDLE, ABSOLUTE, max_sessions_per_user=0)
    with pytest.raises(Exception, match="at least 1"):
        redis_stores(
            redis_url, idle_timeout=IDLE, absolute_timeout=ABSOLUTE, max_sessions_per_user=0
        )
