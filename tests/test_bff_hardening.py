"""Review findings on the BFF: every body is capped before it is read, sign-in throttling
cannot lock a user out by name, key writes are rate limited, only API keys are stored, a
remote upstream must use TLS, and unexpected errors still carry the security headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import Message, Receive, Scope, Send

from patterns.bff import BffSettings, RateLimit, UserDirectory, create_app, memory_stores
from patterns.bff.client import BffClient
from patterns.bff.security import BodyLimit
from patterns.errors import ConfigurationError
from patterns.keys import demo_key
from patterns.serving import BackgroundServer
from patterns.upstream import UpstreamSettings
from patterns.upstream import create_app as create_upstream

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    users = UserDirectory()
    for name in ("alice", "bob", "carol", "dave"):
        users.add(name, PASSWORD)
    upstream = BackgroundServer(create_upstream(UpstreamSettings())).start()
    settings = BffSettings(
        upstream_url=upstream.url,
        login_limit=RateLimit(60, 3),  # per (user, address)
        login_ip_limit=RateLimit(600, 50),  # tests all come from 127.0.0.1
        key_write_limit=RateLimit(1, 2),
    )
    try:
        with BackgroundServer(create_app(settings, users=users)) as server:
            yield server.url
    finally:
        upstream.stop()


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"username": "alice", "password": "'
    for _ in range(total // 65536):
        yield b"x" * 65536
    yield b'"}'


def test_a_huge_chunked_sign_in_body_is_refused_as_it_arrives(url: str) -> None:
    response = httpx.post(
        f"{url}/auth/login", content=_chunks(8 * 1024 * 1024), headers={"origin": url}
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_a_declared_huge_key_body_is_refused_before_reading(url: str) -> None:
    client = BffClient(url).login("alice", PASSWORD)
    response = client.request("PUT", "/keys/anthropic", content=b"x" * (64 * 1024))
    assert response.status_code == 413


def test_failing_on_one_name_does_not_lock_out_another(url: str) -> None:
    for _ in range(4):
        httpx.post(
            f"{url}/auth/login",
            json={"username": "bob", "password": "wrong"},
            headers={"origin": url},
        )
    assert BffClient(url).login("alice", PASSWORD)  # not throttled by bob's failures


def test_only_api_keys_are_stored_and_writes_are_rate_limited(url: str) -> None:
    client = BffClient(url).login("carol", PASSWORD)
    admin = client.request(
        "PUT", "/keys/anthropic", json={"api_key": demo_key("ops", kind="admin01").reveal()}
    )
    assert admin.status_code == 400
    assert "sk-ant-api03-" in admin.json()["error"]["message"]
    statuses = [
        client.request(
            "PUT", "/keys/anthropic", json={"api_key": demo_key(f"k{i}").reveal()}
        ).status_code
        for i in range(3)
    ]
    assert statuses == [204, 204, 429]


def test_deeply_nested_json_is_a_400_not_a_500(url: str) -> None:
    client = BffClient(url).login("dave", PASSWORD)
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.request(
        "POST", "/claude/v1/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"


def test_plain_http_to_a_remote_upstream_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="every user's API key"):
        BffSettings(upstream_url="http://api.anthropic.example")
    BffSettings(upstream_url="https://api.anthropic.example")


def test_concurrent_calls_cannot_overrun_a_budget() -> None:
    import asyncio

    users = UserDirectory()
    users.add("erin", PASSWORD)
    upstream = BackgroundServer(create_upstream(UpstreamSettings(stream_delay=0.01))).start()
    settings = BffSettings(upstream_url=upstream.url, token_budget=400)
    try:
        with BackgroundServer(create_app(settings, users=users)) as server:
            client = BffClient(server.url).login("erin", PASSWORD)
            client.store_key(demo_key("upstream"))
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "Tell me a story"}],
            }

            async def burst() -> list[int]:
                async with httpx.AsyncClient(
                    base_url=server.url, headers=client.headers(), timeout=30
                ) as http:
                    calls = [http.post("/claude/messages", json=body) for _ in range(10)]
                    return [r.status_code for r in await asyncio.gather(*calls)]

            statuses = asyncio.run(burst())
            used = client.usage()
            assert statuses.count(200) >= 1
            assert 403 in statuses
            assert used["input_tokens"] + used["output_tokens"] <= 400
    finally:
        upstream.stop()


def test_leaving_a_stream_early_is_charged_its_worst_case() -> None:
    import time

    users = UserDirectory()
    users.add("frank", PASSWORD)
    upstream = BackgroundServer(create_upstream(UpstreamSettings(stream_delay=0.05))).start()
    settings = BffSettings(upstream_url=upstream.url)
    try:
        with BackgroundServer(create_app(settings, users=users)) as server:
            client = BffClient(server.url).login("frank", PASSWORD)
            client.store_key(demo_key("upstream"))
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 200,
                "stream": True,
                "messages": [{"role": "user", "content": "A long story, please"}],
            }
            with httpx.stream(
                "POST", f"{server.url}/claude/messages", json=body, headers=client.headers()
            ) as reply:
                next(reply.iter_raw())  # one chunk, then hang up
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and client.usage()["requests"] == 0:
                time.sleep(0.05)
            assert client.usage()["output_tokens"] >= 200
    finally:
        upstream.stop()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_budget_holds_are_atomic_in_both_stores(
    backend: str, request: pytest.FixtureRequest
) -> None:
    import asyncio

    from patterns.bff.redis_stores import redis_stores
    from patterns.bff.stores import memory_stores

    if backend == "redis":
        stores = redis_stores(
            request.getfixturevalue("redis_url"), idle_timeout=60, absolute_timeout=600
        )
    else:
        stores = memory_stores(60, 600)
    usage = stores.usage

    async def run() -> list[bool]:
        granted = await asyncio.gather(*(usage.reserve("gina", 30, 100) for _ in range(10)))
        await usage.add("gina", 1, 10, 10)  # one call settled: 20 used
        await usage.release("gina", 30)
        after = await usage.reserve("gina", 30, 100)  # 20 used + 60 held + 30 > 100
        await usage.release("gina", 60)
        last = await usage.reserve("gina", 80, 100)  # 20 used + 80 fits exactly
        if stores.close is not None:  # in the same event loop as the client
            closing = stores.close()
            if hasattr(closing, "__await__"):
                await closing
        return [*granted, after, last]

    results = asyncio.run(run())
    assert results[:10].count(True) == 3
    assert results[10:] == [False, True]


def test_middleware_added_after_create_app_also_guards_the_messages_route() -> None:
    """The messages route has a shortcut past FastAPI's router; middleware an engineer adds
    (here a trusted-host check) must still see it, as it sees every other route."""
    upstream = BackgroundServer(create_upstream(UpstreamSettings())).start()
    try:
        app = create_app(BffSettings(upstream_url=upstream.url))
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["bff.example"])
        with BackgroundServer(app) as server:
            for path in ("/claude/messages", "/claude/v1/messages", "/auth/me"):
                method = "GET" if path == "/auth/me" else "POST"
                response = httpx.request(
                    method, f"{server.url}{path}", headers={"host": "evil.example"}, json={}
                )
                assert response.status_code == 400, path
                assert response.text == "Invalid host header"
    finally:
        upstream.stop()


def test_a_mounted_bff_gives_messages_the_messages_body_limit() -> None:
    """Under a mount point the full path stays in ``scope["path"]``; the body cap must go by
    the path below the mount, or a mounted BFF refuses ordinary messages as too large."""
    seen: list[int] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        seen.append(len(message.get("body", b"")))

    limit = BodyLimit(inner, messages_limit=64 * 1024, small_limit=1024)
    body = b"x" * 20_000
    scope: Scope = {
        "type": "http",
        "path": "/bff/claude/messages",
        "root_path": "/bff",
        "headers": [(b"content-length", str(len(body)).encode())],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    asyncio.run(limit(scope, receive, send))
    assert seen == [len(body)]
    small = {**scope, "path": "/bff/auth/login"}
    with pytest.raises(StarletteHTTPException):
        asyncio.run(limit(small, receive, send))


def test_each_call_releases_its_budget_hold_exactly_once() -> None:
    """A hold released twice would hand the user budget they never had; never released,
    it would shrink their budget for good. Answers, refusals and streams alike: once."""
    users = UserDirectory()
    users.add("gina", PASSWORD)
    upstream = BackgroundServer(create_upstream(UpstreamSettings())).start()
    stores = memory_stores(60, 600)
    releases: list[int] = []
    release = stores.usage.release

    async def counted(username: str, tokens: int) -> None:
        releases.append(tokens)
        await release(username, tokens)

    stores.usage.release = counted  # type: ignore[method-assign]
    settings = BffSettings(upstream_url=upstream.url, token_budget=100_000)
    try:
        with BackgroundServer(create_app(settings, users=users, stores=stores)) as server:
            client = BffClient(server.url).login("gina", PASSWORD)
            client.store_key(demo_key("upstream"))
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hello"}],
            }
            url = f"{server.url}/claude/messages"
            cases: list[tuple[dict[str, object], int, int]] = [
                ({}, 200, 1),
                ({"stream": True}, 200, 1),
                ({"model": "nope-1"}, 400, 0),
            ]
            for variant, status, expected in cases:
                releases.clear()
                response = httpx.post(url, json={**body, **variant}, headers=client.headers())
                assert response.status_code == status, response.text
                deadline = time.monotonic() + 5
                while len(releases) < expected and time.monotonic() < deadline:
                    time.sleep(0.02)  # a stream settles just after its last chunk
                time.sleep(0.1)  # and a second release would come now
                assert len(releases) == expected, (variant, releases)
                assert stores.usage._held.get("gina", 0) == 0  # type: ignore[attr-defined]
    finally:
        upstream.stop()


def test_a_budget_hold_bounds_non_english_text_too() -> None:
    # The body goes upstream as UTF-8 (not \u escapes): a CJK character is 3 bytes and an
    # emoji 4, and either can cost a token or more, so the hold counts each non-ASCII byte.
    from patterns.bff.messages import _hold_for
    from patterns.bff.validation import MessagesRequest

    def hold(text: str) -> int:
        request = MessagesRequest.model_validate(
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": text}]}
        )
        return _hold_for(request.upstream_body(), 1)

    assert hold("漢" * 10_000) >= 3 * 10_000
    assert hold("🙂" * 10_000) >= 4 * 10_000
    english = hold("a" * 30_000)
    assert 10_000 <= english <= 10_100  # ASCII: one token per 3 bytes, as before
