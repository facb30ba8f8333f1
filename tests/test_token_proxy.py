"""The token proxy over real HTTP: the official SDK with a temporary token, scope and
expiry errors mapped to the SDK's classes, streaming passthrough, issuer-guarded minting,
fail-closed behaviour, and a canary organisation key that never leaves the proxy."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from patterns.keys import ApiKey, canary_key
from patterns.serving import BackgroundServer, free_port
from patterns.tokens import MemoryTokenStore, TokenService
from patterns.tokens.proxy import ProxySettings, create_app
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from tests import servers

MODEL = "claude-haiku-4-5"
ORG_KEY = canary_key()
ISSUER = ApiKey("issuer-secret-for-tests-" + "x" * 16)
ROOMY = RateLimits(100_000, 10_000_000, 10_000_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    settings = UpstreamSettings(api_keys=(ORG_KEY,), limits=ROOMY)
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def proxy(upstream: BackgroundServer, clock: Clock) -> Iterator[tuple[str, TokenService]]:
    service = TokenService(MemoryTokenStore(), ttl=600, max_uses=3, clock=clock)
    settings = ProxySettings(upstream.url, {"default": ORG_KEY}, ISSUER)
    with BackgroundServer(create_app(service, settings)) as server:
        yield server.url, service


def mint(url: str, **body: object) -> dict[str, object]:
    response = httpx.post(
        f"{url}/tokens",
        json={"user_id": "alice", **body},
        headers={"authorization": f"Bearer {ISSUER.reveal()}"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def sdk(url: str, token: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=str(token), max_retries=0)


def ask(client: anthropic.Anthropic, model: str = MODEL, max_tokens: int = 64) -> str:
    message = client.messages.create(
        model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": "Hello"}]
    )
    return message.content[0].text  # type: ignore[union-attr]


def test_the_official_sdk_works_with_a_temporary_token(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    minted = mint(url)
    client = sdk(url, minted["token"])
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )
    assert raw.headers["akp-token-remaining-uses"] == "2"
    assert raw.headers["request-id"]
    assert raw.parse().content
    assert (
        client.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}]
        ).input_tokens
        > 0
    )


def test_used_up_and_expired_tokens_raise_authentication_error(
    proxy: tuple[str, TokenService], clock: Clock
) -> None:
    url, _ = proxy
    client = sdk(url, mint(url, max_uses=1)["token"])
    ask(client)
    with pytest.raises(anthropic.AuthenticationError, match="used up"):
        ask(client)
    later = sdk(url, mint(url, ttl_seconds=30)["token"])
    ask(later)
    clock.now += 30
    with pytest.raises(anthropic.AuthenticationError):
        ask(later)


def test_scope_violations_raise_permission_denied(proxy: tuple[str, TokenService]) -> None:
    url, service = proxy
    minted = mint(url, models=[MODEL], max_tokens=100)
    client = sdk(url, minted["token"])
    with pytest.raises(anthropic.PermissionDeniedError):
        ask(client, model="claude-opus-4-1")
    with pytest.raises(anthropic.PermissionDeniedError):
        ask(client, max_tokens=101)
    ask(client, max_tokens=100)
    status = service.status(str(minted["token_id"]))
    assert status is not None
    assert status.uses == 1  # refusals consumed nothing


def test_streaming_passes_through(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    client = sdk(url, mint(url)["token"])
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Stream"}]
    ) as stream:
        chunks = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(chunks) > 1
    assert "".join(chunks) == final.content[0].text  # type: ignore[union-attr]


def test_bad_tokens_and_no_tokens(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    with pytest.raises(anthropic.AuthenticationError):
        ask(sdk(url, "akp_tmp_" + "Q" * 43))
    with pytest.raises(anthropic.AuthenticationError):
        ask(sdk(url, ORG_KEY.reveal()))  # the real key is not a token here
    response = httpx.post(f"{url}/v1/messages", json={"model": MODEL})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_minting_needs_the_issuer_secret(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": ISSUER.reveal()}):
        response = httpx.post(f"{url}/tokens", json={"user_id": "mallory"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["type"] == "error"


@pytest.mark.parametrize(
    "body",
    [{}, {"user_id": ""}, {"user_id": "a", "max_uses": 0}, {"user_id": "a", "extra": 1}],
)
def test_minting_validates_its_body(
    proxy: tuple[str, TokenService], body: dict[str, object]
) -> None:
    url, _ = proxy
    response = httpx.post(
        f"{url}/tokens", json=body, headers={"authorization": f"Bearer {ISSUER.reveal()}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_revocation_routes(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    auth = {"authorization": f"Bearer {ISSUER.reveal()}"}
    one, two, three = mint(url), mint(url), mint(url, user_id="bob")
    assert httpx.delete(f"{url}/tokens/{one['token_id']}", headers=auth).status_code == 204
    assert httpx.delete(f"{url}/tokens/{one['token_id']}", headers=auth).status_code == 404
    with pytest.raises(anthropic.AuthenticationError):
        ask(sdk(url, one["token"]))
    revoked = httpx.delete(f"{url}/users/alice/tokens", headers=auth)
    assert revoked.json() == {"revoked": 1, "known": True}
    with pytest.raises(anthropic.AuthenticationError):
        ask(sdk(url, two["token"]))
    assert ask(sdk(url, three["token"]))
    assert httpx.delete(f"{url}/users/alice/tokens").status_code == 401


def test_oversize_and_malformed_bodies(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    headers = {"x-api-key": str(mint(url)["token"]), "anthropic-version": "2023-06-01"}
    big = httpx.post(f"{url}/v1/messages", content=b"{" + b" " * (5 * 1024 * 1024), headers=headers)
    assert big.status_code == 413
    assert big.json()["error"]["type"] == "request_too_large"
    for content in (b"not json", b"[1, 2]"):
        bad = httpx.post(f"{url}/v1/messages", content=content, headers=headers)
        assert bad.status_code == 400
    wrong_type = httpx.post(
        f"{url}/v1/messages", json={"model": MODEL, "max_tokens": "9"}, headers=headers
    )
    assert wrong_type.status_code == 400


def test_upstream_down_is_an_api_error(clock: Clock) -> None:
    service = TokenService(MemoryTokenStore(), clock=clock)
    settings = ProxySettings(f"http://127.0.0.1:{free_port()}", {"default": ORG_KEY}, ISSUER)
    with BackgroundServer(create_app(service, settings)) as server:
        client = sdk(server.url, service.mint("alice").token)
        with pytest.raises(anthropic.InternalServerError, match="could not be reached"):
            ask(client)


def test_redis_down_fails_closed(upstream: BackgroundServer) -> None:
    from patterns.tokens import RedisTokenStore

    store = RedisTokenStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    settings = ProxySettings(upstream.url, {"default": ORG_KEY}, ISSUER)
    with BackgroundServer(create_app(TokenService(store), settings)) as server:
        response = httpx.post(
            f"{server.url}/v1/messages",
            json={"model": MODEL, "max_tokens": 5, "messages": []},
            headers={"x-api-key": "akp_tmp_" + "D" * 43},
        )
        assert response.status_code == 500
        assert "unavailable" in response.json()["error"]["message"]
        minted = httpx.post(
            f"{server.url}/tokens",
            json={"user_id": "alice"},
            headers={"authorization": f"Bearer {ISSUER.reveal()}"},
        )
        assert minted.status_code == 500


def test_the_organisation_key_never_leaves_the_proxy(
    proxy: tuple[str, TokenService],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url, _ = proxy
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        minted = mint(url, max_uses=2)
        headers = {"x-api-key": str(minted["token"]), "anthropic-version": "2023-06-01"}
        body = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        for payload in (body, {**body, "stream": True}, body, {"model": "nope"}):
            response = httpx.post(f"{url}/v1/messages", json=payload, headers=headers)
            seen += [response.text, repr(dict(response.headers))]
    captured = capfd.readouterr()
    everything = "\n".join([*seen, caplog.text, captured.out, captured.err])
    assert ORG_KEY.reveal() not in everything
    assert str(minted["token"]) not in caplog.text + captured.out + captured.err


def _start_proxy_process(
    upstream_url: str, redis_url: str, *extra: str
) -> tuple[subprocess.Popen[str], str]:
    """A proxy process given its key through ``ANTHROPIC_API_KEY``; its banner names the key
    by fingerprint only."""
    process = servers.start_token_proxy(
        upstream_url, redis_url, ORG_KEY, issuer=ISSUER, extra=extra
    )
    url, (banner,) = servers.read_banner(process, servers.PROXY_BANNER, lines=1)
    assert ORG_KEY.reveal() not in banner
    assert ORG_KEY.fingerprint in banner
    return process, url


@pytest.mark.timeout(120)
def test_two_proxy_processes_sharing_redis_grant_exactly_max_uses(
    upstream: BackgroundServer, redis_url: str
) -> None:
    processes = [_start_proxy_process(upstream.url, redis_url) for _ in range(2)]
    try:
        urls = [url for _, url in processes]
        minted = mint(urls[0], max_uses=100)
        headers = {"x-api-key": str(minted["token"]), "anthropic-version": "2023-06-01"}
        body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                calls = [
                    client.post(f"{urls[i % 2]}/v1/messages", json=body, headers=headers)
                    for i in range(200)
                ]
                return [r.status_code for r in await asyncio.gather(*calls)]

        statuses = asyncio.run(burst())
        assert statuses.count(200) == 100
        assert statuses.count(401) == 100
    finally:
        for process, _ in processes:
            servers.stop(process)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"model": "' + MODEL.encode() + b'", "pad": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


def test_a_chunked_body_without_a_token_is_refused_before_it_is_read(
    proxy: tuple[str, TokenService],
) -> None:
    url, _ = proxy
    response = httpx.post(f"{url}/v1/messages", content=_chunks(50 * 1024 * 1024), timeout=30)
    assert response.status_code == 401


def test_a_chunked_body_over_the_limit_is_cut_off(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    headers = {"x-api-key": str(mint(url)["token"])}
    response = httpx.post(
        f"{url}/v1/messages", content=_chunks(6 * 1024 * 1024), headers=headers, timeout=30
    )
    assert response.status_code == 413


def test_minting_checks_the_issuer_before_reading_the_body(proxy: tuple[str, TokenService]) -> None:
    url, _ = proxy
    response = httpx.post(f"{url}/tokens", content=_chunks(10 * 1024 * 1024), timeout=30)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "claude-opus-4-1", "max_tokens": 8, "model": "claude-haiku-4-5"}',
        b'{"model": "claude-haiku-4-5", "max_tokens": NaN}',
        '{"model": "claude-haiku-4-5"}'.encode("utf-16"),
    ],
)
def test_ambiguous_json_is_refused(proxy: tuple[str, TokenService], body: bytes) -> None:
    url, _ = proxy
    minted = mint(url, models=[MODEL])
    response = httpx.post(
        f"{url}/v1/messages",
        content=body,
        headers={"x-api-key": str(minted["token"]), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_plain_http_to_a_remote_upstream_is_refused() -> None:
    from patterns.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="would expose the organisation's API key"):
        ProxySettings("http://api.example.com", {"default": ORG_KEY}, ISSUER)
    ProxySettings("https://api.example.com", {"default": ORG_KEY}, ISSUER)
    ProxySettings("http://10.0.0.5", {"default": ORG_KEY}, ISSUER, allow_insecure_upstream=True)


def test_fields_and_betas_outside_the_allowlist_are_refused_without_spending_a_use(
    proxy: tuple[str, TokenService],
) -> None:
    url, service = proxy
    minted = mint(url)
    headers = {"x-api-key": str(minted["token"]), "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    extra = httpx.post(
        f"{url}/v1/messages", json={**body, "mcp_servers": [{"url": "x"}]}, headers=headers
    )
    assert extra.status_code == 400
    assert "mcp_servers" in extra.json()["error"]["message"]
    beta = httpx.post(
        f"{url}/v1/messages", json=body, headers={**headers, "anthropic-beta": "files-api-2025"}
    )
    assert beta.status_code == 400
    record = service.status(str(minted["token_id"]))
    assert record is not None
    assert record.uses == 0


def test_an_allowed_beta_is_forwarded(upstream: BackgroundServer, clock: Clock) -> None:
    service = TokenService(MemoryTokenStore(), clock=clock)
    settings = ProxySettings(
        upstream.url, {"default": ORG_KEY}, ISSUER, allowed_betas=frozenset({"demo-beta"})
    )
    with BackgroundServer(create_app(service, settings)) as server:
        token = service.mint("alice").token
        body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(
            f"{server.url}/v1/messages",
            json=body,
            headers={
                "x-api-key": token,
                "anthropic-beta": "demo-beta",
                "anthropic-version": "2023-06-01",
            },
        )
        assert response.status_code == 200


@pytest.mark.timeout(120)
def test_a_proxy_process_writes_the_audit_log_monitor_reads(
    upstream: BackgroundServer, redis_url: str, tmp_path: Path
) -> None:
    audit_log = tmp_path / "proxy-audit.jsonl"
    process, url = _start_proxy_process(upstream.url, redis_url, "--audit-log", str(audit_log))
    try:
        minted = mint(url, max_uses=5)
        client = anthropic.Anthropic(api_key=str(minted["token"]), base_url=url, max_retries=0)
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    finally:
        servers.stop(process)
    assert stat.S_IMODE(audit_log.stat().st_mode) == 0o600
    text = audit_log.read_text()
    assert ORG_KEY.reveal() not in text
    assert str(minted["token"]) not in text
    events = [json.loads(line) for line in text.splitlines()]
    calls = [e for e in events if e.get("status") == 200 and e.get("model") == MODEL]
    assert calls, events
    monitor = subprocess.run(
        [sys.executable, "-m", "patterns", "monitor", str(audit_log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert monitor.returncode == 0, monitor.stderr
    assert ORG_KEY.reveal() not in monitor.stdout + monitor.stderr
