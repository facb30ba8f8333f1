"""Alert hooks against a local receiver (an HTTP server on 127.0.0.1 started here): delivery,
retries, timeouts, refusal of plain http to a remote host, a secret URL never shown, and a
live BFF whose requests neither wait for nor fail with its hooks."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from patterns.bff import Argon2Parameters, BffSettings, RateLimit, UserDirectory, create_app
from patterns.bff.client import BffClient
from patterns.bff.monitoring import attach_alert_hooks
from patterns.clock import FakeClock
from patterns.errors import ConfigurationError
from patterns.keys import demo_key
from patterns.lifecycle.monitoring import (
    Alert,
    AlertDeliveryError,
    AlertDispatcher,
    AlertHook,
    CallableHook,
    WebhookHook,
    deliver,
)
from patterns.models import DEFAULT_MODEL
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream

ALERT = Alert("alice", "requests per minute", 20, 2.0, 5.0, 1_900_000_040.0, ("req_1",))
SECRET_PATH = "/hooks/T0000/B0000/S3CR3TPATHTOKEN"


class Receiver:
    """A webhook endpoint: answers each POST per ``plan`` (a status, or a delay in seconds
    before 200), then 200; keeps what it received."""

    def __init__(self) -> None:
        self.plan: list[int | float] = []
        self.received: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                step = receiver.plan.pop(0) if receiver.plan else 200
                if isinstance(step, float):
                    time.sleep(step)
                    step = 200
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(step)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def no_sleep(seconds: float) -> None:
    pass


def test_a_webhook_receives_the_alert_json(receiver: Receiver) -> None:
    WebhookHook(receiver.url)(ALERT)
    ((path, body),) = receiver.received
    assert path == SECRET_PATH
    assert body == ALERT.payload()
    assert body["alert"]["request_ids"] == ["req_1"]


def test_retries_are_bounded_and_a_4xx_is_not_retried(receiver: Receiver) -> None:
    waits: list[float] = []
    receiver.plan = [500, 503]
    WebhookHook(receiver.url, retries=2, backoff=0.25, sleep=waits.append)(ALERT)
    assert len(receiver.received) == 3
    assert waits == [0.25, 0.5]
    receiver.received.clear()
    receiver.plan = [500, 500, 500, 500]
    with pytest.raises(AlertDeliveryError) as failed:
        WebhookHook(receiver.url, retries=2, sleep=no_sleep)(ALERT)
    assert len(receiver.received) == 3
    assert str(failed.value) == (
        "the webhook at http://127.0.0.1 did not take the alert (HTTP 500) after 3 attempt(s)"
    )
    receiver.received.clear()
    receiver.plan = [404]
    with pytest.raises(AlertDeliveryError, match="HTTP 404"):
        WebhookHook(receiver.url, retries=2, sleep=no_sleep)(ALERT)
    assert len(receiver.received) == 1


def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.plan = [1.0]
    started = time.monotonic()
    WebhookHook(receiver.url, timeout=0.2, retries=1, sleep=no_sleep)(ALERT)
    assert time.monotonic() - started < 1.0  # gave up on the slow one after 0.2 s
    receiver.plan = [1.0, 1.0]
    with pytest.raises(AlertDeliveryError, match=r"ReadTimeout\) after 2 attempt"):
        WebhookHook(receiver.url, timeout=0.2, retries=1, sleep=no_sleep)(ALERT)


def test_plain_http_to_a_remote_host_is_refused_and_the_url_is_never_shown() -> None:
    url = "http://hooks.example.com" + SECRET_PATH
    with pytest.raises(ConfigurationError) as refused:
        WebhookHook(url)
    assert "use https" in str(refused.value)
    assert SECRET_PATH not in str(refused.value)
    hook = WebhookHook("https://hooks.example.com" + SECRET_PATH, retries=0, sleep=no_sleep)
    assert repr(hook) == "WebhookHook(https://hooks.example.com)"
    transport = httpx.MockTransport(lambda request: httpx.Response(502))
    failing = WebhookHook(
        "https://hooks.example.com" + SECRET_PATH, transport=transport, retries=1, sleep=no_sleep
    )
    failures = deliver([ALERT], [failing])
    assert failures == [
        "WebhookHook(https://hooks.example.com) failed: the webhook at https://hooks.example.com "
        "did not take the alert (HTTP 502) after 2 attempt(s)"
    ]
    assert all(SECRET_PATH not in line for line in failures)


def test_a_full_queue_drops_and_counts_and_a_failing_hook_is_counted() -> None:
    release = threading.Event()
    seen: list[str] = []

    def blocking(alert: Alert) -> None:
        release.wait(5)
        seen.append(alert.user)

    def broken(alert: Alert) -> None:
        raise RuntimeError("pager down")

    dispatcher = AlertDispatcher([CallableHook(blocking), CallableHook(broken)], queue_size=1)
    with dispatcher:
        assert dispatcher.submit(ALERT)
        deadline = time.monotonic() + 5
        while dispatcher._queue.qsize() and time.monotonic() < deadline:  # the worker took it
            time.sleep(0.01)
        assert dispatcher.submit(Alert("bob", "tokens per minute", 1, 0, 5, None))
        assert not dispatcher.submit(Alert("carol", "tokens per minute", 1, 0, 5, None))
        release.set()
        assert dispatcher.flush(5)
    assert seen == ["alice", "bob"]
    stats = dispatcher.stats
    assert (stats.queued, stats.delivered, stats.failed, stats.dropped) == (2, 2, 2, 1)
    assert dispatcher.failures[0] == "CallableHook(broken) failed: RuntimeError"


@pytest.fixture
def bff_url() -> Iterator[tuple[str, Any, FakeClock]]:
    key = demo_key("alert-hooks")
    upstream = UpstreamSettings((key,), limits=RateLimits(100_000, 10**8, 10**8))
    users = UserDirectory(Argon2Parameters(memory_kib=8 * 1024, iterations=1))
    users.add("alice", "alice's long password")
    clock = FakeClock(1_900_000_040.0)
    with BackgroundServer(create_upstream(upstream)) as api:
        settings = BffSettings(
            upstream_url=api.url, clock=clock, message_limit=RateLimit(1000, 100)
        )
        app = create_app(settings, users=users)
        with BackgroundServer(app) as server:
            client = BffClient(server.url).login("alice", "alice's long password")
            client.store_key(key)
            yield server.url, app, clock


def test_a_live_bff_pages_off_the_request_path(
    bff_url: tuple[str, Any, FakeClock], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url, app, clock = bff_url
    caplog.set_level(logging.DEBUG)
    started = threading.Event()

    def slow(alert: Alert) -> None:
        started.set()
        time.sleep(1.5)

    def broken(alert: Alert) -> None:
        raise RuntimeError("pager down")

    hooks: list[AlertHook] = [
        CallableHook(slow),
        CallableHook(broken),
        WebhookHook(receiver.url, sleep=no_sleep),
    ]
    dispatcher = attach_alert_hooks(app, hooks)
    sdk = BffClient(url).login("alice", "alice's long password").sdk()
    statuses: list[int] = []
    durations: list[float] = []

    def ask() -> None:
        began = time.monotonic()
        raw = sdk.messages.with_raw_response.create(
            model=DEFAULT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
        )
        durations.append(time.monotonic() - began)
        statuses.append(raw.status_code)

    for _ in range(3):
        ask()
        ask()
        clock.advance(60)
    for _ in range(25):
        ask()
    assert started.wait(5)
    assert statuses == [200] * 31
    assert max(durations) < 1.0  # the call that raised the alert did not wait for the hooks
    assert dispatcher.flush(10)
    dispatcher.close()
    stats = dispatcher.stats
    assert (stats.queued, stats.delivered, stats.failed, stats.dropped) == (1, 2, 1, 0)
    ((_, body),) = receiver.received
    assert body["alert"]["user"] == "alice"
    assert body["alert"]["value"] == 20
    assert len(body["alert"]["request_ids"]) == 5
    assert all(rid.startswith("req_") for rid in body["alert"]["request_ids"])
    assert SECRET_PATH not in caplog.text
