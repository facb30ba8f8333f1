"""Redis-backed BFF state: sessions, rate limits, sealed keys and usage shared by two BFFs
(in-process, then two ``python -m patterns serve bff`` processes), idle expiry in Redis,
and fail-closed 503s when Redis cannot be reached."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import redis

from patterns.bff import BffSettings, RateLimit, UserDirectory, create_app, redis_stores
from patterns.bff.client import BffClient
from patterns.bff.redis_stores import MARKER, META_KEY
from patterns.bff.vault import KEY_NAME
from patterns.keys import demo_key
from patterns.kms import LocalKms
from patterns.serving import BackgroundServer, free_port
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from tests import servers

MODEL = "claude-haiku-4-5"
PASSWORD = "correct horse battery staple"
USER_KEY = demo_key("bff-redis-user")
PASSPHRASE = "a passphrase for the test key file"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def users() -> UserDirectory:
    directory = UserDirectory()
    directory.add("alice", PASSWORD)
    return directory


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    settings = UpstreamSettings(api_keys=(USER_KEY,), limits=RateLimits(100_000, 10**7, 10**7))
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


def _pair(
    upstream: BackgroundServer, users: UserDirectory, redis_url: str, tmp_path: Path, **extra: Any
) -> tuple[BackgroundServer, BackgroundServer]:
    kms = LocalKms(tmp_path / "keys.json", master_key=os.urandom(32))
    kms.create_key(KEY_NAME)
    servers = []
    for _ in range(2):
        settings = BffSettings(upstream_url=upstream.url, **extra)
        stores = redis_stores(
            redis_url,
            idle_timeout=settings.idle_timeout,
            absolute_timeout=settings.absolute_timeout,
        )
        app = create_app(settings, users=users, stores=stores, kms=kms, kms_key_id=KEY_NAME)
        servers.append(BackgroundServer(app).start())
    return servers[0], servers[1]


def test_two_bffs_share_sessions_keys_usage_and_limits(
    upstream: BackgroundServer, users: UserDirectory, redis_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    first, second = _pair(
        upstream, users, redis_url, tmp_path, clock=clock, message_limit=RateLimit(6, 3)
    )
    try:
        on_first = BffClient(first.url).login("alice", PASSWORD)
        on_first.store_key(USER_KEY)
        on_second = BffClient(second.url)
        on_second.session_id, on_second.csrf_token = on_first.session_id, on_first.csrf_token
        # Behind a load balancer both replicas share one public origin; here each has its own.
        assert on_second.me()["key_fingerprint"] == USER_KEY.fingerprint
        clients = [on_first.sdk(), on_second.sdk()]
        for index in range(3):
            clients[index % 2].messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(anthropic.RateLimitError):
            clients[1].messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert on_first.usage()["requests"] == 3
        raw = redis.Redis.from_url(redis_url, decode_responses=True)
        stored = " ".join(str(raw.hget(k, "sealed")) for k in raw.keys("bff:k:*"))
        assert stored.startswith("kms1.")
        assert USER_KEY.reveal() not in stored
        assert on_first.session_id is not None
        everything = [str(k) for k in raw.keys("*")]
        assert not any(on_first.session_id in k for k in everything)  # only its hash
        on_second.logout()
        assert on_first.request("GET", "/auth/me").status_code == 401
    finally:
        first.stop()
        second.stop()


def test_idle_expiry_holds_in_redis(
    upstream: BackgroundServer, users: UserDirectory, redis_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    first, second = _pair(
        upstream, users, redis_url, tmp_path, clock=clock, idle_timeout=300, absolute_timeout=900
    )
    try:
        client = BffClient(first.url).login("alice", PASSWORD)
        clock.now += 299
        assert client.request("GET", "/auth/me").status_code == 200
        clock.now += 300
        assert client.request("GET", "/auth/me").status_code == 401
        client = BffClient(first.url).login("alice", PASSWORD)
        for _ in range(3):
            clock.now += 280
            assert client.request("GET", "/auth/me").status_code == 200
        clock.now += 100  # 940 s after sign-in: past the absolute limit
        assert client.request("GET", "/auth/me").status_code == 401
    finally:
        first.stop()
        second.stop()


def test_redis_unreachable_fails_closed_with_503(
    upstream: BackgroundServer, users: UserDirectory
) -> None:
    settings = BffSettings(upstream_url=upstream.url)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    stores = redis_stores(dead, idle_timeout=60, absolute_timeout=600, timeout=0.5)
    with BackgroundServer(create_app(settings, users=users, stores=stores)) as server:
        login = httpx.post(
            f"{server.url}/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"origin": server.url},
        )
        assert login.status_code == 503
        assert login.json()["error"]["message"].startswith("the session store is unavailable")
        assert "set-cookie" not in login.headers
        forged = {"cookie": "__Host-session=" + "A" * 43, "origin": server.url}
        for method, path in [("GET", "/auth/me"), ("POST", "/claude/messages")]:
            response = httpx.request(method, f"{server.url}{path}", headers=forged, json={})
            assert response.status_code == 503, path
            assert response.headers["request-id"]
            assert "Traceback" not in response.text


def test_a_bff_on_redis_marks_its_namespace_at_start_up(
    upstream: BackgroundServer, users: UserDirectory, redis_url: str
) -> None:
    """Incident tools refuse a database or namespace without the marker; a BFF writes it
    when it starts, so one that nobody has used yet is still recognised."""
    settings = BffSettings(upstream_url=upstream.url)
    stores = redis_stores(redis_url, idle_timeout=60, absolute_timeout=600, namespace="fresh")
    assert redis.Redis.from_url(redis_url).get(f"fresh:{META_KEY}") is None
    with BackgroundServer(create_app(settings, users=users, stores=stores)):
        assert redis.Redis.from_url(redis_url).get(f"fresh:{META_KEY}") == MARKER.encode()


def _start_bff_process(
    upstream_url: str, redis_url: str, key_file: Path
) -> tuple[subprocess.Popen[str], str]:
    # 10 calls in any 600 s (a moving window, the limits library): none come back mid-test.
    process = servers.start_bff(
        upstream_url,
        redis_url,
        key_file,
        users={"alice": PASSWORD},
        passphrase=PASSPHRASE,
        extra=("--requests-per-minute", "1", "--burst", "10"),
    )
    url, banner = servers.read_banner(process, servers.BFF_BANNER, lines=servers.BFF_BANNER_LINES)
    assert PASSWORD not in "".join(banner)
    assert "Redis" in banner[1]
    return process, url


@pytest.mark.timeout(120)
def test_two_bff_processes_serve_one_user(
    upstream: BackgroundServer, redis_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "bff-keys.json"
    LocalKms.from_passphrase(key_file, PASSPHRASE).create_key(KEY_NAME)
    processes = [_start_bff_process(upstream.url, redis_url, key_file) for _ in range(2)]
    try:
        (_, url_a), (_, url_b) = processes
        on_a = BffClient(url_a).login("alice", PASSWORD)
        on_a.store_key(USER_KEY)
        on_b = BffClient(url_b)
        on_b.session_id, on_b.csrf_token, on_b.origin = on_a.session_id, on_a.csrf_token, url_a
        # The browser's origin is A's; B must be told about it to accept the request.
        assert on_b.request("POST", "/claude/messages", json={}).status_code == 403
        on_b.origin = url_b
        with on_b.sdk().messages.stream(
            model="claude-haiku-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert "".join(stream.text_stream)
        statuses = []
        for index in range(14):  # a burst of 10 per user, shared by both processes
            client = on_a if index % 2 == 0 else on_b
            response = client.request(
                "POST",
                "/claude/messages",
                json={
                    "model": MODEL,
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
            statuses.append(response.status_code)
        assert statuses.count(200) == 9, statuses  # 1 of the 10 went to the stream
        assert statuses[-1] == 429
        assert on_a.usage()["requests"] == on_b.usage()["requests"] >= 10
    finally:
        for process, _ in processes:
            servers.stop(process)
