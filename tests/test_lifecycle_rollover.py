"""Organisation-key rollover in the token proxy: the keyring's rules under a fake clock, then
real traffic through the proxy with the official SDK while the key is rolled over (zero
failed requests), and the leak path (old tokens refused at once, new ones unaffected)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from patterns.clock import FakeClock
from patterns.errors import ConfigurationError, StoreUnavailable, TokenRejected
from patterns.keys import ApiKey, canary_key
from patterns.serving import BackgroundServer
from patterns.tokens import MemoryTokenStore, TokenService
from patterns.tokens.keyring import KeyRefs, Keyring, key_file_source
from patterns.tokens.proxy import ProxySettings, create_app
from patterns.upstream import RateLimits, UpstreamSettings, controls_of
from patterns.upstream import create_app as create_upstream
from tests import servers

MODEL = "claude-haiku-4-5"
OLD, NEW, NEWER = canary_key(), canary_key(), canary_key()
R1, R2, R3 = (f"org-{key.fingerprint[7:]}" for key in (OLD, NEW, NEWER))
ISSUER = ApiKey("issuer-secret-for-rollover-tests-" + "x" * 8)
ROOMY = RateLimits(100_000, 10_000_000, 10_000_000)


# -- the keyring's rules ------------------------------------------------------------------


def test_planned_rollover_keeps_old_tokens_on_the_old_key_until_the_grace_ends() -> None:
    clock = FakeClock(1_900_000_000.0)
    keyring = Keyring(OLD, clock=clock)
    service = TokenService(MemoryTokenStore(), clock=clock)
    keyring.attach(service)
    assert (service.key_ref, keyring.get(R1)) == (R1, OLD)
    report = keyring.rollover(NEW, grace=600)
    assert report.changed
    assert (report.current_ref, service.key_ref) == (R2, R2)
    assert keyring.get(R1) == OLD  # grace: both keys in use
    assert keyring.get(R2) == NEW
    assert report.delete_old_key_after == clock() + 600
    assert any("delete it in the Anthropic Console after" in line for line in report.lines())
    clock.advance(600)
    assert keyring.get(R1) == NEW  # grace over: the old key is never sent again
    assert [s.state for s in keyring.status()] == ["retired", "current"]
    assert keyring.get("unknown") is None
    text = repr(keyring) + repr(report) + "\n".join(report.lines()) + repr(keyring.status())
    assert OLD.reveal() not in text
    assert NEW.reveal() not in text


def test_rolling_over_to_the_current_key_changes_nothing() -> None:
    keyring = Keyring(OLD, clock=FakeClock(0))
    report = keyring.rollover(ApiKey(OLD.reveal()), grace=60)
    assert not report.changed
    assert report.lines() == [f"nothing to do: {R1} ({OLD.fingerprint}) is current"]
    assert len(keyring) == 1


def test_a_second_rollover_during_grace_keeps_the_earlier_deadline() -> None:
    clock = FakeClock(0)
    keyring = Keyring(OLD, clock=clock)
    keyring.rollover(NEW, grace=100)
    clock.advance(10)
    report = keyring.rollover(NEWER, grace=1000)
    states = {s.ref: (s.state, s.retire_at) for s in keyring.status()}
    assert states == {R1: ("grace", 100), R2: ("grace", 1010), R3: ("current", None)}
    assert report.delete_old_key_after == 1010


def test_leak_rollover_revokes_every_older_version_at_once() -> None:
    clock = FakeClock(0)
    keyring = Keyring(OLD, clock=clock)
    keyring.rollover(NEW, grace=100)
    report = keyring.rollover(NEWER, grace=0, revoke_previous=True)
    assert report.revoked_refs == (R1, R2, "default")
    for ref in (R1, R2):
        with pytest.raises(TokenRejected, match="revoked"):
            keyring.get(ref)
    assert keyring.get(R3) == NEWER
    assert list(keyring) == [R3]
    again = keyring.rollover(NEWER, grace=0, revoke_previous=True)
    assert not again.changed
    assert again.revoked_refs == ()
    with pytest.raises(ConfigurationError, match="revoked after a leak"):
        keyring.rollover(OLD)
    with pytest.raises(ConfigurationError):
        keyring.rollover(NEW, grace=-1)


def test_key_file_source_refuses_loose_permissions(tmp_path: Path) -> None:
    path = tmp_path / "org.key"
    path.write_text(OLD.reveal() + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        key_file_source(path)()
    assert OLD.reveal() not in str(caught.value)
    path.chmod(0o600)
    assert key_file_source(path)() == OLD
    with pytest.raises(ConfigurationError, match="cannot read"):
        key_file_source(tmp_path / "missing")()


# -- real traffic through the proxy ---------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    settings = UpstreamSettings(api_keys=(OLD, NEW, NEWER), limits=ROOMY)
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


_mint = partial(servers.mint, issuer=ISSUER)
_ask = servers.ask


class Traffic:
    """Client threads calling the proxy with the official SDK until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def add(self, token: str) -> None:
        thread = threading.Thread(target=self._run, args=(token,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, token: str) -> None:
        client = anthropic.Anthropic(base_url=self.url, api_key=token, max_retries=0)
        while not self._stop.is_set():
            try:
                client.messages.create(
                    model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
                )
            except anthropic.APIError as error:
                with self._lock:
                    self.failures.append(type(error).__name__)
            else:
                with self._lock:
                    self.ok += 1

    def wait_for(self, calls: int) -> None:
        deadline = time.monotonic() + 20
        start = self.ok
        while self.ok < start + calls and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def _reload(url: str, **body: object) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/admin/org-key/reload",
        json=body,
        headers={"authorization": f"Bearer {ISSUER.reveal()}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def _keys_seen(upstream: BackgroundServer) -> set[str]:
    """Fingerprints of the keys the stand-in received since its log was last cleared."""
    entries = controls_of(upstream.app).request_log.entries()
    return {
        key.fingerprint
        for key in (OLD, NEW, NEWER)
        for record in entries
        if any(key.fingerprint in value for _, value in record.headers)
    }


def _clear(upstream: BackgroundServer) -> None:
    controls_of(upstream.app).request_log.clear()


def test_rollover_under_traffic_then_leak_response(upstream, caplog) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock(time.time())
    current = {"key": OLD}
    keyring = Keyring(OLD, clock=clock, source=lambda: current["key"])
    service = TokenService(MemoryTokenStore(), ttl=3600, max_uses=100_000, clock=clock)
    keyring.attach(service)
    settings = ProxySettings(upstream.url, keyring, ISSUER)
    with BackgroundServer(create_app(service, settings)) as proxy:
        old_tokens = [_mint(proxy.url) for _ in range(2)]
        traffic = Traffic(proxy.url)
        try:
            for token in old_tokens:
                traffic.add(token)
            traffic.wait_for(20)
            _clear(upstream)
            current["key"] = NEW
            report = _reload(proxy.url, grace_seconds=600)
            assert report["changed"] is True
            assert report["current"] == {"ref": R2, "fingerprint": NEW.fingerprint}
            new_tokens = [_mint(proxy.url) for _ in range(2)]
            for token in new_tokens:
                traffic.add(token)
            traffic.wait_for(40)
            assert _keys_seen(upstream) == {OLD.fingerprint, NEW.fingerprint}  # grace
            clock.advance(601)  # the grace period ends while the clients keep calling
            traffic.wait_for(40)
            _clear(upstream)
            traffic.wait_for(40)
            assert _keys_seen(upstream) == {NEW.fingerprint}  # the old key is never sent again
        finally:
            traffic.stop()
        assert traffic.failures == []
        assert traffic.ok >= 140
        assert _reload(proxy.url, grace_seconds=600)["changed"] is False

        # The new key leaks: roll over to a third key and refuse every earlier token.
        current["key"] = NEWER
        leak = _reload(proxy.url, grace_seconds=0, revoke_previous=True)
        assert leak["revoked"] == [R1, R2, "default"]
        for token in old_tokens + new_tokens:
            with pytest.raises(anthropic.AuthenticationError, match="revoked"):
                _ask(proxy.url, token)
        _clear(upstream)
        _ask(proxy.url, _mint(proxy.url))
        assert _keys_seen(upstream) == {NEWER.fingerprint}
        assert _reload(proxy.url, grace_seconds=0, revoke_previous=True)["changed"] is False
    everything = caplog.text + str(report) + str(leak)
    assert leak["report"][0] == f"new tokens use {R3} ({NEWER.fingerprint})"
    for key in (OLD, NEW, NEWER):
        assert key.reveal() not in everything


def test_reload_needs_the_issuer_secret_and_a_source(upstream) -> None:
    keyring = Keyring(OLD)
    service = TokenService(MemoryTokenStore())
    keyring.attach(service)
    with BackgroundServer(
        create_app(service, ProxySettings(upstream.url, keyring, ISSUER))
    ) as proxy:
        url = f"{proxy.url}/admin/org-key/reload"
        assert httpx.post(url, json={}).status_code == 401
        wrong = httpx.post(url, json={}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        no_source = httpx.post(url, json={}, headers={"authorization": f"Bearer {ISSUER.reveal()}"})
        assert no_source.status_code == 400
        assert "no source" in no_source.json()["error"]["message"]
        extra = httpx.post(
            url, json={"key": "x"}, headers={"authorization": f"Bearer {ISSUER.reveal()}"}
        )
        assert extra.status_code == 400


def test_refs_are_the_same_on_every_replica() -> None:
    """Two replicas sharing a registry (the token store) agree on refs; a replica not yet
    reloaded serves a token minted under a newer key it does not hold with its own current
    key, because another replica registered that ref. Rolling back to a key in its grace
    period restores it."""
    clock = FakeClock(0)
    shared = MemoryTokenStore()
    first = Keyring(OLD, clock=clock, registry=shared)
    second = Keyring(OLD, clock=clock, registry=shared)
    first.rollover(NEW, grace=60)
    assert first.current_ref == R2
    assert second.get(R2) == OLD  # not reloaded yet: no failure, its current key
    assert second.get("other-1234") is None  # another keyring's ref stays unknown
    second.rollover(NEW, grace=60)
    assert second.current_ref == first.current_ref
    back = first.rollover(OLD, grace=60)  # rolling back to a key still in its grace period
    assert back.current_ref == R1
    assert [s.state for s in first.status()] == ["grace", "current"]


def test_a_ref_nobody_registered_is_refused_not_served_with_the_current_key() -> None:
    """The review finding: an unknown ref under the keyring's prefix used to get the current
    key. Without a shared registry, or with one that never saw the ref, it is refused."""
    alone = Keyring(OLD, clock=FakeClock(0))
    with pytest.raises(TokenRejected, match="does not know"):
        alone.get(R2)
    shared = MemoryTokenStore()
    keyring = Keyring(OLD, clock=FakeClock(0), registry=shared)
    with pytest.raises(TokenRejected, match="does not know"):
        keyring.get("org-deadbeef")  # forged into the store
    assert keyring.get("other-1234") is None


def test_tokens_minted_before_the_keyring_keep_working() -> None:
    """Records in Redis from before an upgrade carry key_ref "default"."""
    keyring = Keyring(OLD, clock=FakeClock(0))
    assert keyring.get("default") == OLD
    keyring.rollover(NEW, grace=0)
    assert keyring.get("default") == NEW
    assert Keyring(OLD, legacy_refs=()).get("default") is None
    leak = keyring.rollover(NEWER, grace=0, revoke_previous=True)
    assert "default" in leak.revoked_refs  # minted under an older key: refused after a leak
    with pytest.raises(TokenRejected):
        keyring.get("default")


def test_serve_token_proxy_refuses_a_loose_key_file(tmp_path: Path, capsys, monkeypatch) -> None:
    from patterns.__main__ import main

    path = tmp_path / "org.key"
    path.write_text(OLD.reveal())
    path.chmod(0o644)
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    assert main(["serve", "token-proxy", "--key-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "chmod 600" in err
    assert OLD.reveal() not in err


# -- review F7b: a slow or failing registry ----------------------------------------------------


class _Registry:
    """A memory registry that can fail, or hold a read until released, and counts reads."""

    def __init__(self) -> None:
        self.inner = MemoryTokenStore()
        self.reads = 0
        self.down = False
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def key_refs(self) -> KeyRefs:
        self.reads += 1
        if self.hold:
            self.entered.set()
            self.release.wait(timeout=10)
        if self.down:
            raise StoreUnavailable("the token store (Redis) cannot be reached")
        return self.inner.key_refs()

    def record_key_refs(self, *, known: Any = (), revoked: Any = ()) -> None:
        self.inner.record_key_refs(known=known, revoked=revoked)


def test_after_a_failed_registry_read_requests_are_refused_without_waiting() -> None:
    registry = _Registry()
    keyring = Keyring(OLD, registry=registry, refresh=0, retry_after=0.3)
    registry.down = True
    reads = registry.reads
    with pytest.raises(StoreUnavailable):
        keyring.get(R1)
    assert registry.reads == reads + 1
    for _ in range(5):  # fail closed, at once, without another round trip
        with pytest.raises(StoreUnavailable, match="a moment ago"):
            keyring.get(R1)
    assert registry.reads == reads + 1
    with pytest.raises(StoreUnavailable):
        keyring.rollover(NEW)  # the operator's action always tries
    assert registry.reads == reads + 2
    registry.down = False
    time.sleep(0.35)
    assert keyring.get(R1) == OLD
    assert registry.reads == reads + 3


@pytest.mark.timeout(60)
def test_a_slow_registry_read_does_not_stall_the_event_loop(upstream: BackgroundServer) -> None:
    """The keyring reads the registry under its lock; the proxy runs that lookup in a worker
    thread, so other requests are answered while it waits (review F7b)."""
    registry = _Registry()
    keyring = Keyring(OLD, registry=registry, refresh=0)
    service = TokenService(registry.inner)
    keyring.attach(service)
    settings = ProxySettings(upstream.url, keyring, ISSUER)
    with BackgroundServer(create_app(service, settings)) as proxy:
        token = _mint(proxy.url)
        registry.hold = True
        outcome: list[str] = []

        def slow() -> None:
            _ask(proxy.url, token)
            outcome.append("ok")

        waiting = threading.Thread(target=slow, daemon=True)
        waiting.start()
        try:
            assert registry.entered.wait(timeout=10)
            started = time.monotonic()
            answer = httpx.post(
                f"{proxy.url}/v1/messages",
                json={"model": MODEL, "max_tokens": 8, "messages": []},
                headers={"x-api-key": "not-a-token"},
                timeout=8,
            )
            assert answer.status_code == 401
            assert time.monotonic() - started < 5.0  # the held read lasts up to 10 s
        finally:
            registry.hold = False
            registry.release.set()
            waiting.join(timeout=10)
        assert outcome == ["ok"]


def test_create_app_attaches_the_service_to_its_keyring(upstream) -> None:
    """Code that forgets ``keyring.attach(service)`` still gets one registry: the proxy
    attaches its service, so a leak response's revocation reaches the redemption step."""
    keyring = Keyring(OLD)
    store = MemoryTokenStore()
    service = TokenService(store)
    create_app(service, ProxySettings(upstream.url, keyring, ISSUER))
    assert service.key_ref == keyring.current_ref
    create_app(service, ProxySettings(upstream.url, keyring, ISSUER))  # attaching is idempotent
    with pytest.raises(ConfigurationError):  # a second store would split the revocations
        create_app(TokenService(MemoryTokenStore()), ProxySettings(upstream.url, keyring, ISSUER))
