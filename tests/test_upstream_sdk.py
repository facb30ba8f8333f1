"""The official ``anthropic`` SDK against ``python -m patterns serve upstream`` (a real
subprocess on loopback): the stand-in must look like the real API to the real client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import MessageParam

from patterns.keys import ApiKey, canary_key
from patterns.models import DEFAULT_MODEL
from patterns.upstream import CORS_REJECTION

HI: list[MessageParam] = [{"role": "user", "content": "Write a haiku about API keys."}]


@dataclass
class StandIn:
    url: str
    key: ApiKey
    process: subprocess.Popen[str]
    banner: str

    def client(self, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=self.key.reveal(), base_url=self.url, **options)

    def async_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(api_key=self.key.reveal(), base_url=self.url, **options)

    def fault(self, **spec: Any) -> None:
        response = httpx.post(f"{self.url}/_stand-in/faults", json=spec, timeout=5)
        assert response.status_code == 200, response.text

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_stand-in/faults", timeout=5).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.url}/_stand-in/requests").json()["requests"]
        return rows


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    key = canary_key()
    env = {**os.environ, "PATTERNS_UPSTREAM_KEYS": key.reveal()}
    command = [sys.executable, "-m", "patterns", "serve", "upstream", "--port", "0", "--admin"]
    command += ["--requests-per-minute", "10000", "--stream-delay", "0.001"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    if "http://" not in first:
        process.kill()
        pytest.fail(f"the stand-in did not start: {first!r} {process.communicate()[1]!r}")
    url = first.split(" on ", 1)[1].strip()
    try:
        yield StandIn(url, key, process, first + second)
    finally:
        process.terminate()
        try:
            _, errors = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        assert key.reveal() not in errors, "the stand-in logged the key"


@pytest.fixture(autouse=True)
def _no_faults_left(stand_in: StandIn) -> Iterator[None]:
    yield
    stand_in.clear()


def test_banner_shows_only_the_fingerprint(stand_in: StandIn) -> None:
    assert stand_in.key.fingerprint in stand_in.banner
    assert stand_in.key.reveal() not in stand_in.banner


def test_create_returns_a_real_shaped_message(stand_in: StandIn) -> None:
    raw = stand_in.client().messages.with_raw_response.create(
        model=DEFAULT_MODEL, max_tokens=200, messages=HI
    )
    message = raw.parse()
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert raw.headers["request-id"].startswith("req_")
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{kind}-{part}" in raw.headers


def test_replies_are_deterministic(stand_in: StandIn) -> None:
    client = stand_in.client()
    first = client.messages.create(model=DEFAULT_MODEL, max_tokens=200, messages=HI)
    second = client.messages.create(model=DEFAULT_MODEL, max_tokens=200, messages=HI)
    assert first.content == second.content
    assert first.usage == second.usage


def test_max_tokens_cuts_the_reply(stand_in: StandIn) -> None:
    message = stand_in.client().messages.create(model=DEFAULT_MODEL, max_tokens=3, messages=HI)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_count_tokens_agrees_with_usage(stand_in: StandIn) -> None:
    client = stand_in.client()
    counted = client.messages.count_tokens(model=DEFAULT_MODEL, messages=HI, system="Be brief.")
    message = client.messages.create(
        model=DEFAULT_MODEL, max_tokens=200, messages=HI, system="Be brief."
    )
    assert counted.input_tokens == message.usage.input_tokens


def test_stream_text_and_final_message(stand_in: StandIn) -> None:
    client = stand_in.client()
    plain = client.messages.create(model=DEFAULT_MODEL, max_tokens=200, messages=HI)
    with client.messages.stream(model=DEFAULT_MODEL, max_tokens=200, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.stop_reason == "end_turn"


def test_stream_event_order(stand_in: StandIn) -> None:
    headers = {"x-api-key": stand_in.key.reveal(), "anthropic-version": "2023-06-01"}
    body = {"model": DEFAULT_MODEL, "max_tokens": 50, "messages": HI, "stream": True}
    with httpx.stream("POST", f"{stand_in.url}/v1/messages", headers=headers, json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    deltas = events.count("content_block_delta")
    assert deltas > 1
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_async_create_and_stream(stand_in: StandIn) -> None:
    async def scenario() -> tuple[str, str]:
        async with stand_in.async_client() as client:
            message = await client.messages.create(model=DEFAULT_MODEL, max_tokens=200, messages=HI)
            async with client.messages.stream(
                model=DEFAULT_MODEL, max_tokens=200, messages=HI
            ) as stream:
                text = "".join([chunk async for chunk in stream.text_stream])
        return text, message.content[0].text  # type: ignore[union-attr]

    streamed, created = asyncio.run(scenario())
    assert streamed == created


def test_models_list_pages_like_the_real_one(stand_in: StandIn) -> None:
    client = stand_in.client()
    first = client.models.list(limit=5)
    assert len(first.data) == 5
    assert first.has_more is True
    everything = [model.id for model in client.models.list(limit=5)]
    assert everything[:5] == [model.id for model in first.data]
    assert len(everything) == len(set(everything)) > 5
    assert "claude-3-haiku-20240307" not in everything  # retired: only on request
    retired = [m.id for m in client.models.list(lifecycle=["retired"])]
    assert "claude-3-haiku-20240307" in retired
    info = client.models.retrieve(DEFAULT_MODEL)
    assert info.id == DEFAULT_MODEL
    assert info.lifecycle == "active"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.ContentTooLargeError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_each_status_maps_to_the_sdk_exception(
    stand_in: StandIn, status: int, error_class: type[anthropic.APIStatusError]
) -> None:
    stand_in.fault(kind="fail", status=status)
    with pytest.raises(error_class) as caught:
        stand_in.client(max_retries=0).messages.create(
            model=DEFAULT_MODEL, max_tokens=10, messages=HI
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert caught.value.request_id is not None
    assert body["request_id"] == caught.value.request_id


def test_wrong_and_missing_keys(stand_in: StandIn) -> None:
    wrong = canary_key()
    client = anthropic.Anthropic(api_key=wrong.reveal(), base_url=stand_in.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)
    assert caught.value.api_message == "invalid x-api-key"
    assert wrong.reveal() not in str(caught.value)
    response = httpx.post(
        f"{stand_in.url}/v1/messages", headers={"anthropic-version": "2023-06-01"}, json={}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "x-api-key header is required"


def test_validation_errors_match_the_api(stand_in: StandIn) -> None:
    client = stand_in.client(max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as retired:
        client.messages.create(model="claude-3-haiku-20240307", max_tokens=10, messages=HI)
    assert retired.value.api_message == "model: claude-3-haiku-20240307"
    with pytest.raises(anthropic.BadRequestError) as too_many:  # an explicit timeout skips
        client.with_options(timeout=30).messages.create(  # the SDK's own long-request check
            model=DEFAULT_MODEL, max_tokens=64_001, messages=HI
        )
    assert "maximum allowed number of output tokens" in str(too_many.value.api_message)
    with pytest.raises(anthropic.BadRequestError) as bad_role:
        client.messages.create(
            model=DEFAULT_MODEL,
            max_tokens=10,
            messages=[{"role": "tool", "content": "x"}],  # type: ignore[list-item,misc]
        )
    assert bad_role.value.api_message == (
        "messages.0.role: Input should be 'user', 'assistant' or 'system'"
    )
    headers = {"x-api-key": stand_in.key.reveal()}
    no_version = httpx.post(f"{stand_in.url}/v1/messages", headers=headers, json={})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"


def test_retries_honour_retry_after_on_429_and_529(stand_in: StandIn) -> None:
    client = stand_in.client(max_retries=2)
    stand_in.fault(kind="fail", status=429, retry_after=1)  # retry-after: 1
    stand_in.fault(kind="fail", status=529, retry_after=0.4)  # retry-after-ms: 400
    started = time.monotonic()
    message = client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)
    elapsed = time.monotonic() - started
    assert message.content
    assert 1.4 <= elapsed < 3  # the server's waits, not the SDK's own backoff
    attempts = [row for row in stand_in.log() if row["path"] == "/v1/messages"][-3:]
    assert [row["status"] for row in attempts] == [429, 529, 200]
    assert [row["headers"]["x-stainless-retry-count"] for row in attempts] == ["0", "1", "2"]


def test_retries_give_up_after_max_retries(stand_in: StandIn) -> None:
    stand_in.fault(kind="fail", status=529, retry_after=0.05, count=3)
    with pytest.raises(anthropic.OverloadedError):
        stand_in.client(max_retries=2).messages.create(
            model=DEFAULT_MODEL, max_tokens=10, messages=HI
        )


def test_error_event_mid_stream_raises(stand_in: StandIn) -> None:
    """After a 200 the status cannot change: the SDK raises the generic APIStatusError and
    the envelope's type says what happened."""
    stand_in.fault(kind="error_stream", status=529, after_events=5)
    client = stand_in.client(max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=DEFAULT_MODEL, max_tokens=200, messages=HI) as stream,
    ):
        "".join(stream.text_stream)
    assert caught.value.type == "overloaded_error"


def test_dropped_stream_raises(stand_in: StandIn) -> None:
    """A cut mid-stream reaches the caller as the transport's protocol error (the SDK does
    not retry a stream that has started): a proxy must pass the failure on, not a 200."""
    stand_in.fault(kind="drop_stream", after_events=4)
    client = stand_in.client(max_retries=0)
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.messages.stream(model=DEFAULT_MODEL, max_tokens=200, messages=HI) as stream,
    ):
        stream.get_final_message()


def test_stall_hits_the_client_timeout(stand_in: StandIn) -> None:
    stand_in.fault(kind="stall", seconds=3)
    client = stand_in.client(max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=DEFAULT_MODEL, max_tokens=10, messages=HI)


def test_cors_rule(stand_in: StandIn) -> None:
    url = f"{stand_in.url}/v1/messages"
    base = {"x-api-key": stand_in.key.reveal(), "anthropic-version": "2023-06-01"}
    body = {"model": DEFAULT_MODEL, "max_tokens": 10, "messages": HI}
    browser = {**base, "origin": "http://localhost:8000"}
    refused = httpx.post(url, headers=browser, json=body)
    assert refused.status_code == 401
    assert refused.json()["error"] == {"type": "authentication_error", "message": CORS_REJECTION}
    assert "access-control-allow-origin" not in refused.headers
    allowed = httpx.post(
        url,
        headers={**browser, "anthropic-dangerous-direct-browser-access": "true"},
        json=body,
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "*"
    preflight = httpx.options(
        url,
        headers={
            "origin": "http://localhost:8000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-api-key,anthropic-version,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    server_only = httpx.post(url, headers=base, json=body)  # no Origin: not a browser
    assert "access-control-allow-origin" not in server_only.headers


def test_the_key_never_comes_back(stand_in: StandIn) -> None:
    secret = stand_in.key.reveal()
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    bodies = [
        {"model": DEFAULT_MODEL, "max_tokens": 10, "messages": HI},
        {"model": secret, "max_tokens": 10, "messages": HI},
        {"model": DEFAULT_MODEL, "max_tokens": 10, "messages": HI, secret: 1},
    ]
    for body in bodies:
        response = httpx.post(f"{stand_in.url}/v1/messages", headers=headers, json=body)
        assert secret not in response.text
        assert secret not in str(response.headers)
    weird = httpx.post(
        f"{stand_in.url}/v1/messages",
        headers={**headers, "anthropic-version": secret},
        json=bodies[0],
    )
    assert weird.status_code == 400
    assert secret not in weird.text
    log = httpx.get(f"{stand_in.url}/_stand-in/requests").text
    assert secret not in log
    assert stand_in.key.fingerprint in log
