"""The token proxy's audit trail over real HTTP: one structured event per proxied call, mint,
revocation and refusal, in the BFF's shape, on the ``patterns.tokens.audit`` logger; the
canary organisation key and the tokens themselves never appear in any event."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from patterns.audit import TOKENS_AUDIT_LOGGER, AuditTrail
from patterns.clock import FakeClock
from patterns.keys import ApiKey, canary_key
from patterns.scanning import find_secrets
from patterns.serving import BackgroundServer
from patterns.tokens import MemoryTokenStore, TokenService
from patterns.tokens.proxy import ProxySettings, create_app
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream

MODEL = "claude-haiku-4-5"
ORG_KEY = canary_key()
ISSUER = ApiKey("issuer-secret-for-audit-tests-" + "y" * 16)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    limits = RateLimits(100_000, 10_000_000, 10_000_000)
    with BackgroundServer(create_upstream(UpstreamSettings((ORG_KEY,), limits=limits))) as server:
        yield server


@pytest.fixture
def proxy(upstream: BackgroundServer) -> Iterator[tuple[str, AuditTrail, Lines]]:
    clock = FakeClock(1_900_000_000.0)
    service = TokenService(MemoryTokenStore(), ttl=600, max_uses=5, clock=clock)
    app = create_app(service, ProxySettings(upstream.url, {"default": ORG_KEY}, ISSUER))
    logger = logging.getLogger(TOKENS_AUDIT_LOGGER)
    lines, level = Lines(), logger.level
    with BackgroundServer(app) as server:
        logger.setLevel(logging.INFO)  # after uvicorn's dictConfig set the package to WARNING
        logger.addHandler(lines)
        try:
            yield server.url, app.state.audit, lines
        finally:
            logger.removeHandler(lines)
            logger.setLevel(level)


def mint(url: str, **body: object) -> dict[str, object]:
    response = httpx.post(
        f"{url}/tokens",
        json={"user_id": "alice", **body},
        headers={"authorization": f"Bearer {ISSUER.reveal()}"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def sdk(url: str, token: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=str(token), max_retries=0)


def hello(client: anthropic.Anthropic, **options: object) -> object:
    call: dict[str, object] = {"model": MODEL, "max_tokens": 32, **options}
    return client.messages.create(messages=[{"role": "user", "content": "Hello"}], **call)  # type: ignore[call-overload]


def test_every_call_is_one_event_with_usage_and_the_request_id_the_client_saw(
    proxy: tuple[str, AuditTrail, Lines],
) -> None:
    url, trail, _ = proxy
    minted = mint(url)
    client = sdk(url, minted["token"])
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
    )
    answer = raw.parse()
    with client.messages.stream(
        model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        streamed = stream.get_final_message()
    client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello"}])

    minted_events = trail.events("token_minted")
    assert minted_events[-1]["user"] == "alice"
    assert minted_events[-1]["token_id"] == minted["token_id"]
    assert minted_events[-1]["status"] == 201
    plain, streamed_event = trail.events("message")
    assert plain["user"] == "alice"
    assert plain["token_id"] == minted["token_id"]
    assert plain["key_ref"] == "default"
    assert plain["key_fingerprint"] == ORG_KEY.fingerprint
    assert plain["model"] == MODEL
    assert plain["status"] == 200
    assert plain["stream"] is False
    assert plain["request_id"] == raw.headers["request-id"]
    assert plain["input_tokens"] == answer.usage.input_tokens
    assert plain["output_tokens"] == answer.usage.output_tokens
    assert plain["at"] == 1_900_000_000.0
    assert plain["latency_ms"] >= 0
    assert streamed_event["stream"] is True
    assert streamed_event["output_tokens"] == streamed.usage.output_tokens > 0
    assert streamed_event["input_tokens"] == streamed.usage.input_tokens > 0
    assert "complete" not in streamed_event
    (counted,) = trail.events("count_tokens")
    assert counted["status"] == 200
    assert counted["user"] == "alice"


def test_refusals_are_events_with_the_reason_and_the_request_id_of_the_answer(
    proxy: tuple[str, AuditTrail, Lines],
) -> None:
    url, trail, _ = proxy
    scoped = sdk(url, mint(url, models=[MODEL], max_uses=1)["token"])
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        hello(scoped, model="claude-opus-4-1")
    hello(scoped)
    with pytest.raises(anthropic.AuthenticationError) as used_up:
        hello(scoped)
    with pytest.raises(anthropic.AuthenticationError):
        hello(sdk(url, "not-a-token"))
    refusals = trail.events("token_refused")
    assert [(e["reason"], e["status"]) for e in refusals] == [
        ("model", 403),
        ("exhausted", 401),
        ("malformed", 401),
    ]
    assert refusals[0]["request_id"] == denied.value.request_id
    assert refusals[1]["request_id"] == used_up.value.request_id
    bad = httpx.post(
        f"{url}/v1/messages", content=b"{", headers={"x-api-key": str(mint(url)["token"])}
    )
    assert bad.status_code == 400
    (malformed,) = trail.events("request_refused")
    assert malformed["status"] == 400
    assert malformed["request_id"] == bad.headers["request-id"]


def test_issuer_routes_are_audited(proxy: tuple[str, AuditTrail, Lines]) -> None:
    url, trail, _ = proxy
    issuer = {"authorization": f"Bearer {ISSUER.reveal()}"}
    minted = mint(url, user_id="bob")
    assert httpx.post(f"{url}/tokens", json={"user_id": "x"}).status_code == 401
    assert httpx.delete(f"{url}/tokens/{minted['token_id']}", headers=issuer).status_code == 204
    assert httpx.delete(f"{url}/tokens/{minted['token_id']}", headers=issuer).status_code == 404
    mint(url, user_id="bob")
    assert httpx.delete(f"{url}/users/bob/tokens", headers=issuer).json() == {
        "revoked": 1,
        "known": True,
    }
    (refused,) = trail.events("issuer_refused")
    assert refused["route"] == "/tokens"
    assert refused["status"] == 401
    assert [e["status"] for e in trail.events("token_revoked")] == [204, 404]
    (bulk,) = trail.events("user_tokens_revoked")
    assert bulk == {
        "event": "user_tokens_revoked",
        "at": bulk["at"],
        "user": "bob",
        "revoked": 1,
        "known": True,
        "status": 200,
    }


def test_the_canary_key_and_the_tokens_never_reach_an_event_or_a_log_line(
    proxy: tuple[str, AuditTrail, Lines],
) -> None:
    url, trail, lines = proxy
    minted = mint(url)
    token = str(minted["token"])
    client = sdk(url, token)
    hello(client)
    hello(client, stream=True)
    with pytest.raises(anthropic.AuthenticationError):
        hello(sdk(url, ORG_KEY.reveal()))  # someone sends the org key itself as a token
    httpx.delete(
        f"{url}/tokens/{ORG_KEY.reveal()}", headers={"authorization": f"Bearer {ISSUER.reveal()}"}
    )
    httpx.post(
        f"{url}/tokens",
        json={"user_id": "x"},
        headers={"authorization": f"Bearer {ORG_KEY.reveal()}"},
    )
    text = trail.as_text() + "\n" + "\n".join(lines.lines)
    assert len(lines.lines) == len(trail.events()) >= 6
    for line in lines.lines:
        json.loads(line)  # the logger carries the same JSON objects, one per line
    assert ORG_KEY.reveal() not in text
    assert token not in text
    assert ISSUER.reveal() not in text
    assert find_secrets(text, include_fakes=True) == []
    assert ORG_KEY.fingerprint in text


def test_a_token_store_that_is_down_is_an_audited_refusal(upstream: BackgroundServer) -> None:
    from patterns.serving import free_port
    from patterns.tokens import RedisTokenStore

    store = RedisTokenStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    settings = ProxySettings(upstream.url, {"default": ORG_KEY}, ISSUER)
    app = create_app(TokenService(store), settings)
    with BackgroundServer(app) as server:
        response = httpx.post(
            f"{server.url}/v1/messages",
            json={"model": MODEL, "max_tokens": 5, "messages": []},
            headers={"x-api-key": "akp_tmp_" + "D" * 43},
        )
    assert response.status_code == 500
    (refused,) = app.state.audit.events("request_refused")
    assert refused["reason"] == "token store unavailable"
    assert refused["status"] == 500
    assert refused["request_id"] == response.headers["request-id"]
