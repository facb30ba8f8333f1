"""Organisation-key revocations outlive the process that made them (review finding).

Before: revoked key refs lived in one keyring's memory, and a ref the keyring did not hold
was served with the current key, so a replica restarted (or started) after a leak served
tokens minted under the leaked key. Now the token store is the replicas' shared registry of
known and revoked refs (memory or Redis: the same contract), the store refuses a token of a
revoked ref atomically, and a ref nobody registered is refused (401).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

import anthropic
import httpx
import pytest

from patterns.__main__ import main
from patterns.clock import FakeClock
from patterns.errors import ConfigurationError, StoreUnavailable, TokenRejected
from patterns.keys import ApiKey, canary_key
from patterns.serving import BackgroundServer
from patterns.tokens import MemoryTokenStore, RedisTokenStore, TokenService
from patterns.tokens.keyring import KeyRefs, Keyring
from tests import servers

OLD, NEW, NEWER = canary_key(), canary_key(), canary_key()
R1, R2, R3 = (f"org-{key.fingerprint[7:]}" for key in (OLD, NEW, NEWER))
ISSUER = ApiKey("issuer-secret-for-keyring-persistence-" + "p" * 8)

Store = MemoryTokenStore | RedisTokenStore


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryTokenStore()
    url = request.getfixturevalue("redis_url")
    return RedisTokenStore.from_url(url)


def _redeem_reason(service: TokenService, token: str) -> str:
    try:
        service.redeem(token)
    except TokenRejected as error:
        return str(getattr(error, "reason", "?"))
    return "ok"


# -- the registry contract, memory and Redis alike -------------------------------------------


def test_a_leak_outlives_the_keyring_that_revoked_it(store: Store) -> None:
    clock = FakeClock(1_900_000_000.0)
    first = Keyring(OLD, clock=clock, registry=store)
    service = TokenService(store, clock=clock)
    first.attach(service)
    old_token = service.mint("alice").token
    assert store.key_refs() == KeyRefs(frozenset({R1}), frozenset())

    report = first.rollover(NEW, grace=0, revoke_previous=True)
    assert report.revoked_refs == (R1, "default")
    assert store.key_refs().revoked == {R1, "default"}
    assert _redeem_reason(service, old_token) == "revoked"  # the store itself refuses it

    # A replica started after the leak, with the new key: it never held OLD.
    restarted = Keyring(NEW, clock=clock, registry=store)
    for ref in (R1, "default"):
        with pytest.raises(TokenRejected, match="revoked"):
            restarted.get(ref)
    assert restarted.get(R2) == NEW
    # ... and one started with the leaked key refuses to start.
    with pytest.raises(ConfigurationError, match="revoked after a leak") as caught:
        Keyring(OLD, clock=clock, registry=store)
    assert OLD.reveal() not in str(caught.value)
    with pytest.raises(ConfigurationError, match="revoked after a leak"):
        restarted.rollover(OLD)


def test_a_replica_not_reloaded_after_a_leak_elsewhere_refuses_everything(store: Store) -> None:
    clock = FakeClock(0)
    leader = Keyring(OLD, clock=clock, registry=store)
    lagging = Keyring(OLD, clock=clock, registry=store, refresh=0)
    leader.rollover(NEW, grace=0, revoke_previous=True)
    # Its current key leaked: it must not forward anything with it, even a new token's
    # request (ref R2, registered by the leader).
    for ref in (R1, R2, "default"):
        with pytest.raises(TokenRejected, match="revoked"):
            lagging.get(ref)
    # Reloading it (the operator's leak response on this replica) brings it back.
    report = lagging.rollover(NEW, grace=0, revoke_previous=True)
    assert report.rolled_over
    assert lagging.get(R2) == NEW


def test_a_leak_revokes_refs_other_replicas_minted_under(store: Store) -> None:
    """A replica that never held OLD (started later) still revokes it in a leak response."""
    clock = FakeClock(0)
    Keyring(OLD, clock=clock, registry=store).rollover(NEW, grace=600)
    late = Keyring(NEW, clock=clock, registry=store)
    assert late.get(R1) == NEW  # registered by a replica, grace elsewhere: served
    report = late.rollover(NEWER, grace=0, revoke_previous=True)
    assert set(report.revoked_refs) == {R1, R2, "default"}
    assert f"{R1}: its tokens are refused" in report.lines()
    assert store.key_refs().revoked == {R1, R2, "default"}
    assert not late.rollover(NEWER, grace=0, revoke_previous=True).changed


def test_a_forged_ref_is_refused(store: Store) -> None:
    keyring = Keyring(OLD, clock=FakeClock(0), registry=store)
    forged = TokenService(store, key_ref="org-0badc0de")  # someone wrote to the store
    grant = forged.redeem(forged.mint("mallory").token)
    with pytest.raises(TokenRejected, match="does not know"):
        keyring.get(grant.key_ref)


class _FlakyRegistry:
    """A registry whose writes fail until ``up`` is set, as Redis going away would."""

    def __init__(self) -> None:
        self.inner = MemoryTokenStore()
        self.up = True

    def key_refs(self) -> KeyRefs:
        return self.inner.key_refs()

    def record_key_refs(self, *, known: Iterable[str] = (), revoked: Iterable[str] = ()) -> None:
        if not self.up:
            raise StoreUnavailable("the token store (Redis) cannot be reached")
        self.inner.record_key_refs(known=known, revoked=revoked)


def test_a_failed_registry_write_fails_closed_and_a_rerun_completes_it() -> None:
    registry = _FlakyRegistry()
    keyring = Keyring(OLD, clock=FakeClock(0), registry=registry)
    registry.up = False
    with pytest.raises(StoreUnavailable):
        keyring.rollover(NEW, grace=0, revoke_previous=True)
    with pytest.raises(TokenRejected):
        keyring.get(R1)  # revoked here even though the write failed
    assert registry.inner.key_refs().revoked == frozenset()
    registry.up = True
    keyring.rollover(NEW, grace=0, revoke_previous=True)  # the operator runs it again
    assert registry.inner.key_refs().revoked == {R1, "default"}


def test_redis_down_at_start_is_refused(tmp_path: Path) -> None:
    from patterns.serving import free_port

    store = RedisTokenStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    with pytest.raises(StoreUnavailable):
        Keyring(OLD, registry=store)


# -- two serve token-proxy processes sharing Redis --------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    with servers.stand_in(OLD, NEW) as server:
        yield server


_spawn = partial(servers.spawn_token_proxy, issuer=ISSUER)
_mint = partial(servers.mint, issuer=ISSUER)


def _refused(url: str, token: str) -> bool:
    try:
        servers.ask(url, token)
    except anthropic.AuthenticationError:
        return True
    return False


@pytest.mark.timeout(120)
def test_leak_on_one_replica_then_restart_the_other(
    upstream: BackgroundServer,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    key_file = servers.write_key_file(tmp_path / "org.key", OLD)
    (first, first_url), (second, second_url) = (
        _spawn(upstream.url, redis_url, key_file) for _ in range(2)
    )
    processes = [first, second]
    try:
        old_tokens = [_mint(first_url), _mint(second_url)]
        for url in (first_url, second_url):
            servers.ask(url, old_tokens[0])

        # The leak response runs against the first replica only.
        key_file.write_text(NEW.reveal() + "\n")
        status = main(
            ["incident", "org-key-leaked", "--proxy", first_url, "--leaked", OLD.fingerprint]
        )
        leak = capsys.readouterr().out
        assert status == 0, leak
        fresh = _mint(first_url)
        servers.ask(first_url, fresh)
        # The second replica was not reloaded: the store refuses the old tokens on it, and
        # its own (leaked) key is not used for the fresh token either.
        assert all(_refused(url, t) for url in (first_url, second_url) for t in old_tokens)
        assert _refused(second_url, fresh)

        # Restart the second replica: a new process, with nothing in memory.
        servers.stop(second)
        second, second_url = _spawn(upstream.url, redis_url, key_file)
        processes[1] = second
        assert all(_refused(url, t) for url in (first_url, second_url) for t in old_tokens)
        servers.ask(second_url, fresh)
        servers.ask(second_url, _mint(second_url))

        # A token whose record names a ref no replica registered is refused on both.
        store = RedisTokenStore.from_url(redis_url)
        forged = TokenService(store, key_ref="org-0badc0de").mint("mallory").token
        assert _refused(first_url, forged)
        assert _refused(second_url, forged)

        # A replica started with the leaked key refuses to start (exit 2, no key shown).
        leaked_file = servers.write_key_file(tmp_path / "leaked.key", OLD)
        command = ["serve", "token-proxy", "--key-file", str(leaked_file), "--redis", redis_url]
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "revoked after a leak" in err
        for key in (OLD, NEW):
            assert key.reveal() not in leak + err
    finally:
        for process in processes:
            if process.poll() is None:
                servers.stop(process)


# -- review F5: a lagging replica never forwards with a revoked key -------------------------


@pytest.fixture(params=["memory", "redis"])
def replica_stores(request: pytest.FixtureRequest) -> tuple[Store, Store]:
    """Two replicas' handles on one store: one object in memory, two clients for Redis."""
    if request.param == "memory":
        shared = MemoryTokenStore()
        return shared, shared
    url = request.getfixturevalue("redis_url")
    return RedisTokenStore.from_url(url), RedisTokenStore.from_url(url)


def test_a_token_of_another_replica_is_refused_the_moment_the_lagging_key_is_revoked(
    replica_stores: tuple[Store, Store],
) -> None:
    """Repro r3: replica B, not reloaded, serves A's newer tokens with its own current key.
    When that key is revoked on A, B refused only after its next registry read (up to
    ``refresh``); now the store refuses in the redemption step itself, so B's hour-long
    refresh changes nothing."""
    store_a, store_b = replica_stores
    clock = FakeClock(1_900_000_000.0)
    a = Keyring(OLD, clock=clock, registry=store_a)
    b = Keyring(OLD, clock=clock, registry=store_b, refresh=3600)
    service_a, service_b = TokenService(store_a, clock=clock), TokenService(store_b, clock=clock)
    a.attach(service_a)
    b.attach(service_b)
    a.rollover(NEW, grace=900)  # planned, on A only
    token = service_a.mint("u1").token
    assert b.get(service_b.redeem(token).key_ref) == OLD  # R2 is foreign to B: its own key
    assert b.get(R2) == OLD  # B's view of the registry is now fresh for an hour

    a.rollover(NEW, grace=0, revoke_previous=True)  # OLD turns out leaked
    assert _redeem_reason(service_b, token) == "revoked"  # at once, on B
    assert _redeem_reason(service_a, token) == "ok"  # A forwards it with NEW
    assert _redeem_reason(service_b, service_b.mint("u2").token) == "revoked"


@pytest.mark.timeout(120)
def test_a_lagging_replica_process_refuses_right_after_a_leak_elsewhere(
    upstream: BackgroundServer, redis_url: str, tmp_path: Path
) -> None:
    """The same over HTTP: two serve token-proxy processes, a planned rollover on the first,
    the second not reloaded; the leak response on the first is followed at once by a request
    on the second, inside the second's registry refresh."""
    files = [servers.write_key_file(tmp_path / name, OLD) for name in ("first.key", "second.key")]
    (first, first_url), (second, second_url) = (
        _spawn(upstream.url, redis_url, path) for path in files
    )
    issuer = {"authorization": f"Bearer {ISSUER.reveal()}"}
    try:
        files[0].write_text(NEW.reveal() + "\n")
        reload = f"{first_url}/admin/org-key/reload"
        assert httpx.post(reload, json={"grace_seconds": 900}, headers=issuer).status_code == 200
        token = _mint(first_url)
        servers.ask(second_url, token)  # served by the second with its own key (OLD)
        leak = httpx.post(
            reload, json={"grace_seconds": 0, "revoke_previous": True}, headers=issuer
        )
        assert leak.json()["revoked"] == [R1, "default"]
        # Refused by the store itself, whatever the second's registry view (refreshed every
        # second): before the fix this request, sent at once, was forwarded with OLD.
        assert _refused(second_url, token)
        servers.ask(first_url, token)
    finally:
        for process in (first, second):
            if process.poll() is None:
                servers.stop(process)


# -- review F7a: a keyring without a registry takes the service's store ----------------------


def test_attach_binds_the_service_store_as_the_registry(store: Store) -> None:
    keyring = Keyring(OLD, clock=FakeClock(0))  # no registry=, as notebooks write it
    service = TokenService(store)
    keyring.attach(service)
    assert store.key_refs().known == {R1}
    token = service.mint("alice").token
    keyring.rollover(NEW, grace=0, revoke_previous=True)
    assert store.key_refs().revoked == {R1, "default"}
    assert _redeem_reason(service, token) == "revoked"
    with pytest.raises(ConfigurationError, match="revoked after a leak"):
        Keyring(OLD, registry=store)  # another replica on the same store


def test_attach_is_idempotent(store: Store) -> None:
    keyring = Keyring(OLD, clock=FakeClock(0))
    service = TokenService(store)
    keyring.attach(service)
    keyring.attach(service)
    keyring.rollover(NEW)
    assert service.key_ref == R2
    assert store.key_refs().known == {R1, R2}


def test_attach_refuses_a_registry_that_is_not_the_service_store() -> None:
    keyring = Keyring(OLD, registry=MemoryTokenStore())
    with pytest.raises(ConfigurationError, match="different store"):
        keyring.attach(TokenService(MemoryTokenStore()))


def test_attach_refuses_a_key_revoked_in_the_service_store() -> None:
    store = MemoryTokenStore()
    Keyring(OLD, registry=store).rollover(NEW, grace=0, revoke_previous=True)
    keyring = Keyring(OLD)  # nothing to check against yet
    with pytest.raises(ConfigurationError, match="revoked after a leak"):
        keyring.attach(TokenService(store))


# -- review F6: revocations must survive in Redis --------------------------------------------


def test_the_session_redis_has_no_persistence_and_is_warned_about(redis_url: str) -> None:
    warnings = RedisTokenStore.from_url(redis_url).check_durability()
    assert len(warnings) == 1
    assert "appendonly yes" in warnings[0]


def test_persistence_on_gives_no_warning() -> None:
    with servers.own_redis("--appendonly", "yes", "--dir", "/tmp") as url:
        assert RedisTokenStore.from_url(url).check_durability() == []


@pytest.mark.timeout(60)
def test_an_evicting_redis_is_refused_at_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    with servers.own_redis("--maxmemory-policy", "allkeys-lru") as url:
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            RedisTokenStore.from_url(url).check_durability()
        assert main(["serve", "token-proxy", "--use-demo-key", "--redis", url]) == 2
        err = capsys.readouterr().err
        assert "maxmemory-policy is allkeys-lru" in err
        assert "noeviction" in err


def test_config_refused_by_an_acl_is_a_warning_not_a_guess() -> None:
    import redis

    password = secrets.token_hex(16)
    with servers.own_redis() as url:
        with redis.Redis.from_url(url) as admin:
            admin.execute_command(
                "ACL", "SETUSER", "proxy", "on", f">{password}", "~*", "&*", "+@all", "-config"
            )
        scoped = url.replace("redis://", f"redis://proxy:{password}@")
        store = RedisTokenStore.from_url(scoped)
        warnings = store.check_durability()
        assert len(warnings) == 1
        assert "CONFIG is refused" in warnings[0]
        assert password not in warnings[0]
        keyring = Keyring(OLD, registry=store)  # everything else works for this user
        keyring.rollover(NEW, grace=0, revoke_previous=True)
        assert store.key_refs().revoked == {R1, "default"}


@pytest.mark.timeout(60)
def test_a_live_replica_writes_back_revocations_redis_evicted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Repro r6: Redis switched to allkeys-random while replicas run evicts refs:revoked. A
    replica joining then is refused (the policy), and a live replica notices the loss on its
    next registry read and writes back what it knows, so once the policy is fixed a replica
    started with the leaked key is still refused."""
    import redis

    caplog.set_level(logging.ERROR, logger="patterns.tokens.keyring")
    with servers.own_redis("--maxmemory", "3mb") as url:
        live = Keyring(OLD, registry=RedisTokenStore.from_url(url), refresh=0)
        live.rollover(NEW, grace=0, revoke_previous=True)
        revoked = "akp:tokens:refs:revoked"
        with redis.Redis.from_url(url) as client:
            client.config_set("maxmemory-policy", "allkeys-random")
            for i in range(100_000):
                if not client.exists(revoked):
                    break
                client.set(f"akp:tokens:t:filler{i}", "x" * 512)
            assert not client.exists(revoked)  # evicted, as the reviewer showed
            client.delete(*client.keys("akp:tokens:t:filler*"))
            with pytest.raises(ConfigurationError, match="allkeys-random"):
                Keyring(OLD, registry=RedisTokenStore.from_url(url))  # no replica joins
            assert live.get(R2) == NEW  # its next registry read notices the loss
            assert "lost key refs" in caplog.text
            assert client.exists(revoked)
            client.config_set("maxmemory-policy", "noeviction")
        with pytest.raises(ConfigurationError, match="revoked after a leak"):
            Keyring(OLD, registry=RedisTokenStore.from_url(url))
