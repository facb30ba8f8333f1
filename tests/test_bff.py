"""The BFF over real HTTP, with memory stores: every endpoint, the official SDK through
``/claude``, streaming passthrough, validation, CSRF and Origin, rate limits, budgets,
upstream errors in the Anthropic envelope, idle and absolute expiry on a fake clock."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from patterns.bff import BffSettings, RateLimit, UserDirectory, bff_of, create_app
from patterns.bff.client import BffClient
from patterns.bff.stores import MemoryKeyStore, MemorySessionStore
from patterns.keys import demo_key
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings, controls_of
from patterns.upstream import create_app as create_upstream

MODEL = "claude-haiku-4-5"
PASSWORD = "correct horse battery staple"
USER_KEY = demo_key("bff-user")
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def users() -> UserDirectory:
    directory = UserDirectory()
    directory.add("alice", PASSWORD)
    directory.add("bob", PASSWORD + "!")
    return directory


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    other = demo_key("bff-other")
    settings = UpstreamSettings(
        api_keys=(USER_KEY, other), limits=RateLimits(100_000, 10**7, 10**7), stream_delay=0.02
    )
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


Start = Callable[..., tuple[str, Any]]


@pytest.fixture
def start(upstream: BackgroundServer, users: UserDirectory) -> Iterator[Start]:
    with ExitStack() as stack:

        def start(**overrides: Any) -> tuple[str, Any]:
            target = overrides.pop("upstream_url", upstream.url)
            settings = BffSettings(upstream_url=target, **overrides)
            app = create_app(settings, users=users)
            server = stack.enter_context(BackgroundServer(app))
            return server.url, app

        yield start


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bff(start: Start, clock: Clock) -> tuple[str, Any]:
    return start(clock=clock)


def alice(url: str, *, key: bool = True) -> BffClient:
    client = BffClient(url).login("alice", PASSWORD)
    if key:
        client.store_key(USER_KEY)
    return client


def create(client: anthropic.Anthropic, **overrides: Any) -> anthropic.types.Message:
    options: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": HELLO, **overrides}
    message: anthropic.types.Message = client.messages.create(**options)
    return message


# -- sign-in -------------------------------------------------------------------------------


def test_login_sets_a_host_cookie_and_returns_a_csrf_token(bff: tuple[str, Any]) -> None:
    url, _ = bff
    response = httpx.post(
        f"{url}/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"origin": url},
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    name_value, *flags = [part.strip() for part in cookie.split(";")]
    assert name_value.startswith("__Host-session=")
    assert len(name_value.split("=", 1)[1]) >= 43  # 256 bits, URL-safe base64
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(flags)
    assert not any(flag.lower().startswith("domain") for flag in flags)
    assert set(response.json()) == {"csrf_token"}
    assert response.headers["cache-control"] == "no-store"


def test_the_session_id_is_new_at_every_login_and_the_old_one_dies(bff: tuple[str, Any]) -> None:
    url, app = bff
    first = alice(url, key=False)
    old = first.session_id
    assert old is not None
    second = BffClient(url)
    second.session_id = old  # a fixated or stolen id presented at sign-in
    second.login("alice", PASSWORD)
    assert second.session_id != old
    assert first.request("GET", "/auth/me").status_code == 401
    assert second.me()["username"] == "alice"
    store = bff_of(app).stores.sessions
    assert isinstance(store, MemorySessionStore)
    assert old not in repr(store.__dict__)  # only hashes are kept


def test_unknown_user_and_wrong_password_get_the_same_401_in_similar_time(
    bff: tuple[str, Any],
) -> None:
    url, _ = bff

    def attempt(username: str, password: str) -> tuple[float, httpx.Response]:
        began = time.perf_counter()
        response = httpx.post(
            f"{url}/auth/login",
            json={"username": username, "password": password},
            headers={"origin": url},
        )
        return time.perf_counter() - began, response

    wrong = [attempt("bob", "not the password") for _ in range(3)]
    unknown = [attempt(f"nobody{i}", "not the password") for i in range(3)]
    for _, response in wrong + unknown:
        assert response.status_code == 401
        assert response.json()["error"] == {
            "type": "authentication_error",
            "message": "wrong username or password",
        }
        assert "set-cookie" not in response.headers
    ratio = statistics.median(t for t, _ in unknown) / statistics.median(t for t, _ in wrong)
    assert 0.5 < ratio < 2.0, ratio  # both spend one Argon2id run


def test_passwords_are_stored_as_argon2id(users: UserDirectory) -> None:
    stored = users.stored_hash("alice")
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


def test_logins_are_throttled_per_user(start: Start) -> None:
    url, _ = start(login_limit=RateLimit(per_minute=1, burst=2))
    statuses = [
        httpx.post(
            f"{url}/auth/login",
            json={"username": "bob", "password": "guess"},
            headers={"origin": url},
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1


def test_logout_ends_the_session_server_side(bff: tuple[str, Any]) -> None:
    url, _ = bff
    client = alice(url, key=False)
    stolen = client.headers()
    response = client.request("POST", "/auth/logout")
    assert response.status_code == 204
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert "Max-Age=0" in response.headers["set-cookie"]
    replay = httpx.get(f"{url}/auth/me", headers=stolen)
    assert replay.status_code == 401
    assert replay.json()["error"]["type"] == "authentication_error"


def test_idle_and_absolute_expiry(start: Start, clock: Clock) -> None:
    url, _ = start(clock=clock, idle_timeout=600, absolute_timeout=1800)
    client = alice(url, key=False)
    for _ in range(2):
        clock.now += 590  # active just inside the idle window
        assert client.request("GET", "/auth/me").status_code == 200
    clock.now += 599
    assert client.request("GET", "/auth/me").status_code == 200
    clock.now += 100  # past 1800 s since sign-in although active
    assert client.request("GET", "/auth/me").status_code == 401
    again = alice(url, key=False)
    clock.now += 600
    assert again.request("GET", "/auth/me").status_code == 401


# -- the key vault -------------------------------------------------------------------------


def test_keys_are_sealed_before_storage_and_only_fingerprints_come_back(
    bff: tuple[str, Any],
) -> None:
    url, app = bff
    client = alice(url, key=False)
    assert client.me() == {"username": "alice", "has_key": False, "key_fingerprint": None}
    assert client.request("GET", "/keys/anthropic").status_code == 404
    client.store_key(USER_KEY)
    assert client.me() == {
        "username": "alice",
        "has_key": True,
        "key_fingerprint": USER_KEY.fingerprint,
    }
    answer = client.request("GET", "/keys/anthropic")
    assert answer.json() == {"has_key": True, "key_fingerprint": USER_KEY.fingerprint}
    store = bff_of(app).stores.keys
    assert isinstance(store, MemoryKeyStore)
    record = store.raw()["alice"]
    assert record.sealed.startswith("kms1.")
    assert USER_KEY.reveal() not in repr(store.raw())
    client.delete_key()
    assert client.me()["has_key"] is False


def test_keys_that_are_not_anthropic_keys_are_refused(bff: tuple[str, Any]) -> None:
    url, _ = bff
    client = alice(url, key=False)
    for value in ["", "short", "sk-ant-with space " + "x" * 40, "x" * 60]:
        response = client.request("PUT", "/keys/anthropic", json={"api_key": value})
        assert response.status_code == 400, value
        assert value not in response.text or value == ""


def test_another_users_key_is_never_reachable(bff: tuple[str, Any]) -> None:
    url, app = bff
    alice(url)
    bob = BffClient(url).login("bob", PASSWORD + "!")
    assert bob.me()["has_key"] is False
    with pytest.raises(anthropic.BadRequestError, match="no Anthropic key stored"):
        create(bob.sdk())
    # A database attacker copies alice's sealed row into bob's: the context names the owner.
    store = bff_of(app).stores.keys
    assert isinstance(store, MemoryKeyStore)
    store._records["bob"] = store.raw()["alice"]
    with pytest.raises(anthropic.BadRequestError, match="could not be opened"):
        create(bob.sdk())


# -- the Messages proxy ---------------------------------------------------------------------


def test_the_official_sdk_talks_to_nothing_but_the_bff(
    bff: tuple[str, Any], upstream: BackgroundServer
) -> None:
    url, app = bff
    client = alice(url)
    sdk = client.sdk()
    assert str(sdk.base_url).startswith(url)
    raw = sdk.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=HELLO)
    message = raw.parse()
    assert message.content[0].type == "text"
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["upstream-request-id"] != raw.headers["request-id"]
    seen = controls_of(upstream.app).request_log.last()
    assert seen.path == "/v1/messages"
    assert client.usage() == {
        "username": "alice",
        "requests": 1,
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
        "token_budget": None,
    }
    event = bff_of(app).audit.events("message")[-1]
    assert event["key_fingerprint"] == USER_KEY.fingerprint
    assert event["model"] == MODEL
    assert event["status"] == 200
    assert event["request_id"] == raw.headers["request-id"]


def test_streaming_is_passed_through_chunk_by_chunk(
    bff: tuple[str, Any], upstream: BackgroundServer
) -> None:
    url, _ = bff
    client = alice(url)
    body = {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True}
    arrivals: list[float] = []
    chunks: list[bytes] = []
    began = time.perf_counter()
    with httpx.stream(
        "POST", f"{url}/claude/messages", json=body, headers=client.headers(), timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            arrivals.append(time.perf_counter() - began)
            chunks.append(chunk)
    text = b"".join(chunks).decode()
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert {"content_block_delta", "message_delta"} <= set(events)
    # The stand-in waits 20 ms between events: a buffering proxy would deliver them at once.
    assert len(chunks) >= len(events) // 2
    assert arrivals[0] < arrivals[-1] - 0.1
    with client.sdk().messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
    assert len(pieces) > 1
    assert client.usage()["requests"] == 2
    assert client.usage()["output_tokens"] > 0


def test_requests_outside_the_allowlist_are_refused_before_forwarding(
    bff: tuple[str, Any], upstream: BackgroundServer
) -> None:
    url, _ = bff
    client = alice(url)
    log = controls_of(upstream.app).request_log
    before = len(log.entries())
    sdk = client.sdk()
    with pytest.raises(anthropic.BadRequestError, match="model: not allowed"):
        create(sdk, model="claude-opus-4-7")
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: at most 4096"):
        create(sdk, max_tokens=8000)
    with pytest.raises(anthropic.BadRequestError, match="extra forbidden"):
        create(sdk, extra_body={"tools": [{"name": "x", "input_schema": {"type": "object"}}]})
    with pytest.raises(anthropic.BadRequestError, match="literal error"):
        create(sdk, messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}])
    big = "x" * 300_000
    huge = client.request(
        "POST",
        "/claude/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": big}]},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["type"] == "request_too_large"
    garbage = client.request("POST", "/claude/messages", content=b"not json")
    assert garbage.status_code == 400
    assert len(log.entries()) == before  # nothing reached the upstream


def test_csrf_and_origin_are_required_for_state_changes(bff: tuple[str, Any]) -> None:
    url, _ = bff
    client = alice(url)
    body = {"model": MODEL, "max_tokens": 5, "messages": HELLO}
    cookie_only = {"cookie": client.headers()["cookie"]}
    cases = {
        "no csrf token": {**cookie_only, "origin": url},
        "wrong csrf token": {**cookie_only, "origin": url, "x-csrf-token": "guess"},
        "foreign origin": {**client.headers(), "origin": "https://evil.example"},
        "no origin": {k: v for k, v in client.headers().items() if k != "origin"},
    }
    for name, headers in cases.items():
        for method, path, payload in [
            ("POST", "/claude/messages", body),
            ("PUT", "/keys/anthropic", {"api_key": demo_key("evil").reveal()}),
            ("DELETE", "/keys/anthropic", None),
            ("POST", "/auth/logout", None),
        ]:
            response = httpx.request(method, f"{url}{path}", json=payload, headers=headers)
            assert response.status_code == 403, (name, path)
            assert response.json()["error"]["type"] == "permission_error"
            assert "access-control-allow-origin" not in response.headers
    assert client.key_fingerprint() == USER_KEY.fingerprint  # nothing changed
    foreign_login = httpx.post(
        f"{url}/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert foreign_login.status_code == 403


def test_an_allowed_extra_origin_is_accepted(start: Start) -> None:
    url, _ = start(allowed_origins=("https://app.example.com",))
    client = BffClient(url, origin="https://app.example.com").login("alice", PASSWORD)
    client.store_key(USER_KEY)
    assert client.me()["has_key"]


def test_bursts_hit_the_per_user_rate_limit(start: Start) -> None:
    # The limiter (the limits library) keeps its own wall clock: 3 calls in any 2 real seconds.
    url, _ = start(message_limit=RateLimit(per_minute=90, burst=3))
    sdk = alice(url).sdk()
    for _ in range(3):
        create(sdk, max_tokens=5)
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(sdk, max_tokens=5)
    wait = caught.value.response.headers["retry-after"]
    assert wait in {"1", "2"}  # when the first call leaves the window, rounded up
    time.sleep(float(wait) + 0.05)
    create(sdk, max_tokens=5)
    bob = BffClient(url).login("bob", PASSWORD + "!")
    bob.store_key(USER_KEY)
    create(bob.sdk(), max_tokens=5)  # limits are per user


def test_a_token_budget_caps_each_users_spend(start: Start) -> None:
    # Each call holds its worst case (max_tokens plus an input estimate) before it is sent,
    # so the budget is never overrun: calls stop while the real spend is still under it.
    url, _ = start(token_budget=200)
    client = alice(url)
    sdk = client.sdk()
    served = 0
    while served < 50:
        try:
            create(sdk)
        except anthropic.PermissionDeniedError:
            break
        served += 1
    assert 2 <= served < 50
    with pytest.raises(anthropic.PermissionDeniedError, match="budget"):
        create(sdk)
    assert client.usage()["input_tokens"] + client.usage()["output_tokens"] <= 200


def test_upstream_errors_come_back_in_the_envelope_with_our_request_id(
    bff: tuple[str, Any], upstream: BackgroundServer
) -> None:
    url, _ = bff
    sdk = alice(url).sdk()
    faults = controls_of(upstream.app).faults
    faults.fail_next(529)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        create(sdk)
    assert overloaded.value.request_id == overloaded.value.response.headers["request-id"]
    assert overloaded.value.body["request_id"] == overloaded.value.request_id  # type: ignore[index]
    faults.fail_next(429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as limited:
        create(sdk)
    assert limited.value.response.headers["retry-after"] == "7"
    faults.fail_next(401)
    with pytest.raises(anthropic.PermissionDeniedError, match="refused your stored key"):
        create(sdk)


def test_a_revoked_user_key_is_reported_without_echoing_it(bff: tuple[str, Any]) -> None:
    url, _ = bff
    client = alice(url, key=False)
    revoked = demo_key("revoked-by-the-user")
    client.store_key(revoked)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        create(client.sdk())
    assert revoked.reveal() not in caught.value.response.text


def test_upstream_down_is_an_api_error_and_nothing_leaks(start: Start) -> None:
    url, _ = start(upstream_url="http://127.0.0.1:9")
    sdk = alice(url).sdk()
    with pytest.raises(anthropic.InternalServerError) as caught:
        create(sdk)
    assert "could not be reached" in caught.value.message
    assert "Traceback" not in caught.value.response.text


def test_a_disabled_kms_key_fails_closed_with_503(start: Start) -> None:
    url, app = start(key_cache_seconds=0)
    sdk = alice(url).sdk()
    create(sdk)
    vault = bff_of(app).vault
    kms = vault.kms
    kms.disable_key(vault._key_id)
    with pytest.raises(anthropic.InternalServerError) as caught:
        create(sdk)
    assert caught.value.status_code == 503
    assert "key service is unavailable" in caught.value.message


def test_security_headers_everywhere_and_no_cors(bff: tuple[str, Any]) -> None:
    url, _ = bff
    for path in ["/", "/auth/me", "/static/bff-demo.js", "/nowhere"]:
        response = httpx.get(f"{url}{path}", headers={"origin": "https://evil.example"})
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "access-control-allow-origin" not in response.headers
        assert "server" not in response.headers  # no software banner
    assert httpx.get(f"{url}/auth/me").headers["cache-control"] == "no-store"
    assert httpx.get(f"{url}/static/bff-demo.js").headers["cache-control"] == "no-cache"
    assert httpx.get(f"{url}/static/other.js").status_code == 404
    page = httpx.get(f"{url}/")
    assert page.status_code == 200
    assert "bff-demo.js" in page.text


def test_a_burst_against_the_users_own_baseline_raises_an_alert(start: Start, clock: Clock) -> None:
    url, app = start(clock=clock, message_limit=RateLimit(per_minute=1000, burst=100))
    sdk = alice(url).sdk()
    for _ in range(3):  # a quiet baseline: 2 requests a minute
        create(sdk, max_tokens=5)
        create(sdk, max_tokens=5)
        clock.now += 60
    for _ in range(20):
        create(sdk, max_tokens=5)
    alerts = bff_of(app).audit.events("alert")
    assert len(alerts) == 1
    assert alerts[0]["user"] == "alice"
    assert alerts[0]["signal"] == "requests per minute"
    assert alerts[0]["value"] == 20


def test_the_shared_upstream_client_keeps_no_cookies(users: UserDirectory) -> None:
    seen: list[str | None] = []
    reply = {"type": "message", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json=reply, headers={"set-cookie": "lb=alice-node; Path=/"})

    settings = BffSettings(upstream_url="https://api.example.invalid")
    app = create_app(settings, users=users, transport=httpx.MockTransport(api))
    with BackgroundServer(app) as server:
        client = alice(server.url)
        for _ in range(2):
            response = client.request(
                "POST",
                "/claude/messages",
                json={"model": MODEL, "max_tokens": 5, "messages": HELLO},
            )
            assert response.status_code == 200
            assert "set-cookie" not in response.headers
    assert seen == [None, None]  # alice's upstream cookie did not ride along


def test_an_error_in_the_middle_of_a_stream_passes_through(
    bff: tuple[str, Any], upstream: BackgroundServer
) -> None:
    url, app = bff
    client = alice(url)
    controls_of(upstream.app).faults.error_stream_next(529, after_events=2)
    body = {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{url}/claude/messages", json=body, headers=client.headers(), timeout=30
    ) as response:
        text = response.read().decode()
    assert response.status_code == 200  # the status was sent before the error happened
    assert "event: error" in text
    assert '"overloaded_error"' in text
    assert bff_of(app).audit.events("message")[-1]["stream"] is True
