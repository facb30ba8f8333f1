"""Unit and in-process tests of the stand-in's parts: catalog, replies, limits, faults, log."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from patterns.errors import ConfigurationError
from patterns.keys import canary_key, demo_key
from patterns.models import CATALOG, DEFAULT_MODEL, FALLBACK_MODEL, default_model, find_model
from patterns.serving import BackgroundServer
from patterns.upstream import (
    FaultInjector,
    RateLimits,
    SequentialIds,
    UpstreamError,
    UpstreamSettings,
    controls_of,
    create_app,
)
from patterns.upstream.ratelimit import RateLimiter
from patterns.upstream.replies import compose_reply, count_input_tokens, split_tokens

HI: list[MessageParam] = [{"role": "user", "content": "hello"}]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_catalog_matches_the_sdk_and_marks_lifecycles() -> None:
    from typing import get_args

    from anthropic.types import Model

    sdk_ids = set(get_args(get_args(Model)[0]))
    ours = {entry.id for entry in CATALOG if entry.lifecycle != "retired"}
    assert ours == sdk_ids
    assert find_model("claude-sonnet-4-5") is not None
    assert find_model("claude-sonnet-4-5").lifecycle == "deprecated"  # type: ignore[union-attr]
    retired = find_model("claude-3-haiku-20240307")
    assert retired is not None
    assert not retired.usable
    assert find_model(DEFAULT_MODEL) is not None


def test_default_model_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATTERNS_MODEL", raising=False)
    assert default_model() == FALLBACK_MODEL
    monkeypatch.setenv("PATTERNS_MODEL", "claude-opus-4-8")
    assert default_model() == "claude-opus-4-8"


def test_replies_and_counts_are_consistent() -> None:
    body = {"model": DEFAULT_MODEL, "max_tokens": 100, "messages": HI}
    reply = compose_reply(body)
    assert reply == compose_reply(dict(body))
    assert "".join(split_tokens(reply.text)) == reply.text
    assert reply.input_tokens == count_input_tokens(body)
    stop = reply.text.split()[2]
    cut = compose_reply({**body, "stop_sequences": [stop]})
    assert cut.stop_reason == "stop_sequence"
    assert cut.stop_sequence == stop
    assert stop not in cut.text


def test_sequential_ids_are_reproducible() -> None:
    first, second = SequentialIds("x"), SequentialIds("x")
    assert [first("req") for _ in range(3)] == [second("req") for _ in range(3)]
    assert first("msg").startswith("msg_01")


def test_rate_limiter_refills_continuously() -> None:
    limiter = RateLimiter(RateLimits(requests_per_minute=2))
    clock = Clock()
    headers = limiter.acquire("k", clock(), input_tokens=1, output_tokens=1)
    assert headers["anthropic-ratelimit-requests-remaining"] == "1"
    limiter.acquire("k", clock(), input_tokens=1, output_tokens=1)
    with pytest.raises(UpstreamError) as caught:
        limiter.acquire("k", clock(), input_tokens=1, output_tokens=1)
    assert caught.value.status == 429
    assert caught.value.headers["retry-after"] == "30"  # 2 per minute: one every 30 s
    clock.now += 30
    limiter.acquire("k", clock(), input_tokens=1, output_tokens=1)
    assert limiter.peek("other", clock())["anthropic-ratelimit-requests-remaining"] == "2"


def test_fault_injector_validates_and_orders() -> None:
    faults = FaultInjector()
    with pytest.raises(ConfigurationError):
        faults.fail_next(418)
    faults.drop_stream_next()
    faults.fail_next(529, 2, retry_after=1)
    assert faults.take(streaming=False) is not None  # the 529 jumps the stream fault
    assert faults.pending()[0].startswith("drop")
    faults.clear()
    assert faults.pending() == []


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError):
        UpstreamSettings(stream_delay=-1)
    with pytest.raises(ConfigurationError):
        RateLimits(requests_per_minute=0)


@pytest.fixture
def limited() -> Iterator[tuple[BackgroundServer, Clock]]:
    clock = Clock()
    settings = UpstreamSettings(
        limits=RateLimits(requests_per_minute=2), clock=clock, max_request_bytes=2048
    )
    with BackgroundServer(create_app(settings)) as server:
        yield server, clock


def test_rate_limits_reach_the_sdk(limited: tuple[BackgroundServer, Clock]) -> None:
    server, clock = limited
    client = anthropic.Anthropic(
        api_key=demo_key("upstream").reveal(), base_url=server.url, max_retries=0
    )
    for _ in range(2):
        client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "30"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"] == "2027-01-15T08:01:00Z"
    clock.now += 30
    client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)


def test_oversized_bodies_get_413(limited: tuple[BackgroundServer, Clock]) -> None:
    server, _ = limited
    response = httpx.post(
        f"{server.url}/v1/messages",
        headers={"x-api-key": demo_key("upstream").reveal(), "anthropic-version": "2023-06-01"},
        json={"model": DEFAULT_MODEL, "max_tokens": 5, "messages": HI, "system": "x" * 4096},
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert response.headers["request-id"].startswith("req_")


def test_admin_routes_are_off_by_default_and_unknown_paths_404() -> None:
    with BackgroundServer(create_app()) as server:
        response = httpx.get(f"{server.url}/_stand-in/requests")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
        assert "request-id" in response.headers


def test_request_log_redacts_and_attacker_view_captures() -> None:
    key = canary_key()
    app = create_app(UpstreamSettings(api_keys=(key,), ids=SequentialIds()))
    with BackgroundServer(app) as server:
        client = anthropic.Anthropic(api_key=key.reveal(), base_url=server.url)
        client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)
    log = controls_of(app).request_log
    assert key.reveal() not in log.render()
    assert key.fingerprint in log.render()
    view = log.attacker_view(1)[0]
    assert view.credentials[0][1] == key  # the observer has the whole key ...
    assert key.reveal() not in view.render()  # ... and we still never print it
    assert "hello" in view.body_excerpt


@pytest.fixture(scope="module")
def plain() -> Iterator[str]:
    with BackgroundServer(create_app(UpstreamSettings())) as server:
        yield server.url


def post(url: str, body: object, **headers: str) -> httpx.Response:
    base = {"x-api-key": demo_key("upstream").reveal(), "anthropic-version": "2023-06-01"}
    return httpx.post(f"{url}/v1/messages", headers={**base, **headers}, json=body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
        ({"model": None}, "model: Field required"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text: Field required",
        ),
        ({"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
        ({"stream": "yes"}, "stream: Input should be a valid boolean"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        (
            {"system": [{"type": "text", "text": ""}]},
            "system.0: text content blocks must be non-empty",
        ),
    ],
)
def test_validation_messages(plain: str, change: dict[str, object], message: str) -> None:
    body: dict[str, object] = {"model": DEFAULT_MODEL, "max_tokens": 5, "messages": HI}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    response = post(plain, body)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}


def test_malformed_json_and_unknown_version(plain: str) -> None:
    headers = {"x-api-key": demo_key("upstream").reveal(), "anthropic-version": "2023-06-01"}
    broken = httpx.post(f"{plain}/v1/messages", headers=headers, content=b"{not json")
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_request_error"
    unknown = post(plain, {}, **{"anthropic-version": "1999-01-01"})
    assert (
        unknown.json()["error"]["message"]
        == 'anthropic-version: "1999-01-01" is not a valid version'
    )


def test_models_page_backwards(plain: str) -> None:
    client = anthropic.Anthropic(api_key=demo_key("upstream").reveal(), base_url=plain)
    everything = [m.id for m in client.models.list(limit=100).data]
    page = client.models.list(limit=3, before_id=everything[5])
    assert [m.id for m in page.data] == everything[2:5]
    assert page.has_more is True
    with pytest.raises(anthropic.BadRequestError):
        client.models.list(limit=0)
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-imaginary-1")


def test_bearer_and_x_api_key_are_equivalent(plain: str) -> None:
    key = demo_key("upstream").reveal()
    body = {"model": DEFAULT_MODEL, "max_tokens": 5, "messages": HI}
    by_header = httpx.post(
        f"{plain}/v1/messages",
        headers={"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"},
        json=body,
    )
    assert by_header.status_code == 200
    assert by_header.json()["content"] == post(plain, body).json()["content"]


def test_credentials_capture_can_be_turned_off() -> None:
    key = canary_key()
    app = create_app(UpstreamSettings(api_keys=(key,), capture_credentials=False))
    with BackgroundServer(app) as server:
        anthropic.Anthropic(api_key=key.reveal(), base_url=server.url).models.list()
    assert controls_of(app).request_log.attacker_view(1)[0].credentials == ()


def test_fractional_retry_after_uses_milliseconds() -> None:
    from patterns.upstream.routes import retry_headers

    assert retry_headers(None) == {}
    assert retry_headers(2) == {"retry-after": "2"}
    assert retry_headers(0.25) == {"retry-after": "1", "retry-after-ms": "250"}


def test_keys_can_be_added_and_revoked_like_in_the_console() -> None:
    old, new = demo_key("console-old"), demo_key("console-new")
    app = create_app(UpstreamSettings(api_keys=(old,)))
    ring = controls_of(app).keys
    with BackgroundServer(app) as server:
        ring.accept(new)
        ring.accept(new)  # idempotent
        assert ring.fingerprints == [old.fingerprint, new.fingerprint]
        for key in (old, new):
            anthropic.Anthropic(api_key=key.reveal(), base_url=server.url).models.list()
        assert ring.revoke(old.fingerprint)
        assert not ring.revoke(old.fingerprint)
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(
                api_key=old.reveal(), base_url=server.url, max_retries=0
            ).models.list()
        anthropic.Anthropic(api_key=new.reveal(), base_url=server.url).models.list()
