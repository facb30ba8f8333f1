"""A canary key goes through every BFF flow; it must never come back in any response body or
header, any log line (captured at DEBUG), the audit trail, or the process's output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from patterns.bff import BffSettings, UserDirectory, bff_of, create_app
from patterns.bff.client import BffClient
from patterns.keys import canary_key
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings, controls_of
from patterns.upstream import create_app as create_upstream

CANARY = canary_key()
MODEL = "claude-haiku-4-5"
PASSWORD = "a long enough password"


@pytest.fixture
def servers() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    upstream_settings = UpstreamSettings(
        api_keys=(CANARY,), limits=RateLimits(10_000, 10**7, 10**7)
    )
    users = UserDirectory()
    users.add("carol", PASSWORD)
    with BackgroundServer(create_upstream(upstream_settings)) as upstream:
        app = create_app(BffSettings(upstream_url=upstream.url), users=users)
        with BackgroundServer(app, log_level="debug", access_log=True) as bff:
            yield upstream, bff


def test_the_canary_never_leaves_the_vault_towards_the_browser(
    servers: tuple[BackgroundServer, BackgroundServer],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    upstream, bff = servers
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def keep(response: Any) -> None:
        response.read()
        seen.append(str(response.headers))
        seen.append(response.text)

    client = BffClient(bff.url)
    client._http.event_hooks["response"].append(keep)
    client.login("carol", PASSWORD)
    client.store_key(CANARY)
    secret = CANARY.reveal()
    # The canary in places it does not belong: each refusal must not echo it.
    client.request("PUT", "/keys/anthropic", json={"api_key": secret, "note": secret})
    client.request("PUT", "/keys/anthropic", json={"api_key": secret + " x"})
    client.request("POST", "/claude/messages", json={"model": secret, "max_tokens": 5})
    client.request(
        "POST",
        "/claude/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": [], "system": {"k": secret}},
    )
    # anthropic 2.x brings its own httpx fork; DefaultHttpxClient accepts the same hooks.
    sdk = client.sdk(http_client=anthropic.DefaultHttpxClient(event_hooks={"response": [keep]}))
    message = sdk.messages.create(
        model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    seen.append(message.model_dump_json())
    with sdk.messages.stream(
        model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        seen.extend(stream.text_stream)
    controls_of(upstream.app).faults.fail_next(401)
    client.request(
        "POST",
        "/claude/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    controls_of(upstream.app).faults.error_stream_next(529, after_events=2)
    client.request(
        "POST",
        "/claude/messages",
        json={
            "model": MODEL,
            "max_tokens": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    for path in ["/auth/me", "/keys/anthropic", "/usage", "/"]:
        client.request("GET", path)
    client.logout()
    # It did reach the upstream: the only place it is meant to go.
    attacker = controls_of(upstream.app).request_log.attacker_view()
    assert any(CANARY in [key for _, key in record.credentials] for record in attacker)
    audit = bff_of(bff.app).audit
    assert audit.events("message")
    captured = capfd.readouterr()
    everything = "\n".join([*seen, caplog.text, audit.as_text(), captured.out, captured.err])
    assert CANARY.fingerprint in everything  # the fingerprint is what identifies the key
    assert secret not in everything
    assert secret[:30] not in everything
