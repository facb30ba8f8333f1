"""``count_tokens`` through the BFF: the official SDK's ``messages.count_tokens`` against
``<bff>/claude``, with the user's own key and every defence a message gets; charged to neither
usage nor budget; audited without the key."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from patterns.bff import BffSettings, RateLimit, UserDirectory, bff_of, create_app
from patterns.bff.client import BffClient
from patterns.keys import demo_key
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream

MODEL = "claude-haiku-4-5"
PASSWORD = "correct horse battery staple"
USER_KEY = demo_key("bff-count")
HELLO: list[MessageParam] = [{"role": "user", "content": "How many tokens is this?"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    settings = UpstreamSettings(api_keys=(USER_KEY,), limits=RateLimits(100_000, 10**7, 10**7))
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


@pytest.fixture(params=[10], ids=["burst-10"])
def bff(upstream: BackgroundServer, request: pytest.FixtureRequest) -> Iterator[tuple[str, object]]:
    users = UserDirectory()
    users.add("alice", PASSWORD)
    burst: int = request.param
    settings = BffSettings(
        upstream_url=upstream.url, message_limit=RateLimit(per_minute=60, burst=burst)
    )
    app = create_app(settings, users=users)
    with BackgroundServer(app) as server:
        yield server.url, app


def signed_in(url: str, *, key: bool = True) -> BffClient:
    client = BffClient(url).login("alice", PASSWORD)
    if key:
        client.store_key(USER_KEY)
    return client


def test_the_sdk_counts_tokens_through_the_bff_as_it_would_directly(
    bff: tuple[str, object], upstream: BackgroundServer
) -> None:
    url, app = bff
    client = signed_in(url)
    through = client.sdk().messages.count_tokens(model=MODEL, messages=HELLO)
    direct = anthropic.Anthropic(base_url=upstream.url, api_key=USER_KEY.reveal())
    assert (
        through.input_tokens
        == direct.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens
    )
    assert through.input_tokens > 0
    usage = client.usage()
    assert usage["requests"] == 0  # counting spends no tokens: not charged
    (event,) = bff_of(app).audit.events("count_tokens")
    assert event["key_fingerprint"] == USER_KEY.fingerprint
    assert event["input_tokens"] == through.input_tokens
    assert USER_KEY.reveal() not in bff_of(app).audit.as_text()


def test_count_tokens_is_validated_like_a_message(bff: tuple[str, object]) -> None:
    url, _ = bff
    sdk = signed_in(url).sdk()
    with pytest.raises(anthropic.BadRequestError, match="model: not allowed"):
        sdk.messages.count_tokens(model="claude-opus-9", messages=HELLO)
    client = signed_in(url)
    extras: list[dict[str, object]] = [{"tools": []}, {"max_tokens": 5}, {"mcp_servers": []}]
    for extra in extras:
        body = {"model": MODEL, "messages": HELLO, **extra}
        response = client.request("POST", "/claude/v1/messages/count_tokens", json=body)
        assert response.status_code == 400, extra
        assert response.json()["error"]["type"] == "invalid_request_error"
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    assert client.request("POST", "/claude/messages/count_tokens", json=huge).status_code == 413


def test_count_tokens_needs_a_session_csrf_origin_and_a_stored_key(bff: tuple[str, object]) -> None:
    url, _ = bff
    body = {"model": MODEL, "messages": HELLO}
    path = f"{url}/claude/messages/count_tokens"
    assert httpx.post(path, json=body, headers={"origin": url}).status_code == 401
    client = signed_in(url)
    cookie_only = {"cookie": client.headers()["cookie"], "origin": url}
    assert httpx.post(path, json=body, headers=cookie_only).status_code == 403
    foreign = {**client.headers(), "origin": "https://evil.example"}
    assert httpx.post(path, json=body, headers=foreign).status_code == 403
    keyless = BffClient(url).login("alice", PASSWORD)
    keyless.request("DELETE", "/keys/anthropic").raise_for_status()
    refused = keyless.request("POST", "/claude/messages/count_tokens", json=body)
    assert refused.status_code == 400
    assert "PUT /keys/anthropic" in refused.json()["error"]["message"]


@pytest.mark.parametrize("bff", [3], ids=["burst-3"], indirect=True)
def test_count_tokens_has_a_rate_limit_of_its_own(bff: tuple[str, object]) -> None:
    url, _ = bff
    client = signed_in(url)
    sdk = client.sdk(max_retries=0)
    for _ in range(3):  # the whole burst
        sdk.messages.count_tokens(model=MODEL, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as refused:
        sdk.messages.count_tokens(model=MODEL, messages=HELLO)
    assert int(refused.value.response.headers["retry-after"]) >= 1
    # Messages keep their own budget of calls: counting did not use it up.
    assert sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO).content
