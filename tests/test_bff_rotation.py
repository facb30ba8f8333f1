"""A user replaces their key (``PUT /keys/anthropic``) while their requests keep flowing:
several official SDK clients call the BFF from threads; the stand-in accepts the old and the
new key during the swap, then only the new one once the old is revoked there. No request
fails, and every request that *started after the PUT returned* reached the stand-in with the
new key, on every BFF process (a per-process cache of unsealed keys must not hide a
rotation). Keys are compared by fingerprint in the stand-in's request log, never in clear.

Two variants: one in-process BFF with memory stores, and two ``serve bff`` processes sharing
Redis and a LocalKms file, with the clients spread over both and the PUT sent to one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import anthropic
import pytest

from patterns.bff import BffSettings, RateLimit, UserDirectory, create_app
from patterns.bff.client import BffClient
from patterns.bff.vault import KEY_NAME
from patterns.keys import ApiKey, canary_key
from patterns.kms import LocalKms
from patterns.lifecycle.traffic import Traffic, TrafficReport
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, controls_of
from tests import servers

MODEL = "claude-haiku-4-5"
PASSWORD = "correct horse battery staple"
PASSPHRASE = "a passphrase for the rotation test"
WORKERS = 4


@pytest.fixture
def keys() -> tuple[ApiKey, ApiKey]:
    return canary_key(), canary_key()


@pytest.fixture
def upstream(keys: tuple[ApiKey, ApiKey]) -> Iterator[BackgroundServer]:
    limits = RateLimits(10**6, 10**8, 10**8)
    with servers.stand_in(*keys, limits=limits, request_log_size=100_000) as server:
        yield server


def _revoke_at_the_standin(upstream: BackgroundServer, keep: ApiKey) -> None:
    """The Console's "revoke": from now on the stand-in accepts only ``keep``."""
    ring = controls_of(upstream.app).keys
    for fingerprint in ring.fingerprints:
        if fingerprint != keep.fingerprint:
            ring.revoke(fingerprint)
    assert ring.fingerprints == [keep.fingerprint]


def _sdk_call(clients: list[BffClient]) -> Callable[[], object]:
    """A call for the traffic helper: each worker thread gets its own SDK client (spread
    over ``clients``), and returns which client it used and the stand-in's request id."""
    local = threading.local()
    counter = iter(range(10**6))
    lock = threading.Lock()

    def call() -> tuple[int, str]:
        if getattr(local, "sdk", None) is None:
            with lock:
                local.index = next(counter) % len(clients)
            local.sdk = clients[local.index].sdk(timeout=20.0)
        raw = local.sdk.messages.with_raw_response.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        return local.index, raw.headers["upstream-request-id"]

    return call


def _fingerprints(upstream: BackgroundServer, keys: tuple[ApiKey, ...]) -> dict[str, str]:
    """Stand-in request id -> fingerprint of the key it arrived with (from the redacted log)."""
    seen: dict[str, str] = {}
    for record in controls_of(upstream.app).request_log.entries():
        for key in keys:
            if any(key.fingerprint in value for _, value in record.headers):
                seen[record.request_id] = key.fingerprint
    return seen


def _rotate_under_traffic(
    upstream: BackgroundServer, clients: list[BffClient], writer: BffClient, new: ApiKey
) -> TrafficReport:
    with Traffic(_sdk_call(clients), workers=WORKERS, timeout=30, keep_results=True) as traffic:
        traffic.wait_calls(20)
        with traffic.change("PUT /keys/anthropic"):
            writer.store_key(new)
        traffic.wait_calls(20)
        traffic.settle()  # the old key's last requests have come back
        with traffic.change("old key revoked"):
            _revoke_at_the_standin(upstream, new)
        traffic.wait_calls(20)
    return traffic.report


def _check(
    report: TrafficReport, upstream: BackgroundServer, old: ApiKey, new: ApiKey, processes: int
) -> None:
    assert report.failures == {}, report.summary()
    assert report.success_rate == 1.0
    put, revoked = report.changes
    used = _fingerprints(upstream, (old, new))
    key_of = {call: used[call.result[1]] for call in report.calls}  # type: ignore[index]
    after_put = report.started_after(put)
    assert len(after_put) >= 30  # 40 finished after it, less at most one in flight per worker
    served_by = {call.result[0] for call in after_put}  # type: ignore[index]
    assert served_by == set(range(processes))  # every process saw the rotation
    assert {key_of[call] for call in after_put} == {new.fingerprint}, "a stale key was used"
    before_put = [call for call in report.calls if call.finished < put.started]
    assert len(before_put) >= 20
    assert {key_of[call] for call in before_put} == {old.fingerprint}
    assert len(report.started_after(revoked)) >= 20 - WORKERS
    text = report.summary() + repr(report)
    for key in (old, new):
        assert key.reveal() not in text


def test_rotation_under_traffic_in_one_process(
    upstream: BackgroundServer, keys: tuple[ApiKey, ApiKey]
) -> None:
    old, new = keys
    users = UserDirectory()
    users.add("alice", PASSWORD)
    settings = BffSettings(
        upstream_url=upstream.url,
        message_limit=RateLimit(10**6, 10**5),
        key_cache_seconds=3600,  # the longest cache: a rotation must still be seen at once
    )
    with BackgroundServer(create_app(settings, users=users)) as bff:
        writer = BffClient(bff.url).login("alice", PASSWORD)
        writer.store_key(old)
        clients = [BffClient(bff.url).login("alice", PASSWORD)]
        report = _rotate_under_traffic(upstream, clients, writer, new)
        assert writer.key_fingerprint() == new.fingerprint
    _check(report, upstream, old, new, processes=1)
    with pytest.raises(anthropic.AuthenticationError):  # the old key is dead at the stand-in
        anthropic.Anthropic(
            base_url=upstream.url, api_key=old.reveal(), max_retries=0
        ).models.list()


_start_bff = partial(
    servers.spawn_bff,
    passphrase=PASSPHRASE,
    users={"alice": PASSWORD},
    extra=("--requests-per-minute", "1000000", "--burst", "100000"),
)


@pytest.mark.timeout(120)
def test_rotation_under_traffic_across_two_processes_sharing_redis(
    upstream: BackgroundServer, keys: tuple[ApiKey, ApiKey], redis_url: str, tmp_path: Path
) -> None:
    old, new = keys
    key_file = tmp_path / "bff-keys.json"
    LocalKms.from_passphrase(key_file, PASSPHRASE).create_key(KEY_NAME)
    processes = [_start_bff(upstream.url, redis_url, key_file) for _ in range(2)]
    try:
        (_, url_a), (_, url_b) = processes
        writer = BffClient(url_a).login("alice", PASSWORD)
        writer.store_key(old)
        clients = []
        for url in (url_a, url_b):  # one session, used on both replicas (a load balancer)
            client = BffClient(url)
            client.session_id, client.csrf_token = writer.session_id, writer.csrf_token
            clients.append(client)
        warm = [client.sdk() for client in clients]
        for sdk in warm:  # both processes have unsealed (and cached) the old key
            sdk.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        report = _rotate_under_traffic(upstream, clients, writer, new)
        assert clients[1].key_fingerprint() == new.fingerprint
    finally:
        for process, _ in processes:
            servers.stop(process)
    _check(report, upstream, old, new, processes=2)
