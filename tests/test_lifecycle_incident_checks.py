"""Incident responses that must not say "contained" when they are not (review findings).

F1: org-key-leaked against a proxy whose key file still holds the leaked key (or with a
mistyped fingerprint) said "contained" while the proxy kept forwarding with the leaked key.
F2: user-key-leaked pointed at the wrong Redis database or namespace, or at a mistyped user,
found "nothing to do" everywhere and said "contained". F7c: a session still alive between
the token revocation and the end of the sessions could mint a token that survived.

Real parts: ``python -m patterns serve token-proxy`` and ``serve bff`` processes on a real
redis-server, the stand-in API, the official SDK, and the CLI entry point.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import pytest
import redis

from patterns.__main__ import main
from patterns.bff.redis_stores import MARKER, RedisStores, redis_stores
from patterns.bff.stores import KeyRecord
from patterns.errors import ConfigurationError, TokenRejected
from patterns.keys import ApiKey, canary_key
from patterns.kms import LocalKms
from patterns.lifecycle.incidents import normalise_fingerprint, org_key_leaked, user_key_leaked
from patterns.serving import BackgroundServer
from patterns.tokens import MemoryTokenStore, TokenService
from patterns.tokens.keyring import Keyring
from tests import servers

OLD, NEW = canary_key(), canary_key()
ISSUER = ApiKey("issuer-secret-for-incident-checks-" + "q" * 8)
PASSWORD = "correct horse battery staple"
PASSPHRASE = "a passphrase for the incident checks"


@pytest.fixture
def upstream() -> Iterator[BackgroundServer]:
    with servers.stand_in(OLD, NEW) as server:
        yield server


_spawn_proxy = partial(servers.spawn_token_proxy, issuer=ISSUER)
_spawn_bff = partial(
    servers.spawn_bff, passphrase=PASSPHRASE, users={"alice": PASSWORD, "bob": PASSWORD}
)
_mint = partial(servers.mint, issuer=ISSUER)


def _last_key_received(upstream: BackgroundServer) -> str:
    """The fingerprint of the key on the stand-in's latest request (its log holds only
    fingerprints)."""
    from patterns.upstream import controls_of

    record = controls_of(upstream.app).request_log.last()
    return next(k.fingerprint for k in (OLD, NEW) for _, v in record.headers if k.fingerprint in v)


# -- F1: the organisation key ---------------------------------------------------------------


def test_fingerprints_are_normalised_and_a_pasted_key_is_never_echoed() -> None:
    digits = OLD.fingerprint[7:]
    for typed in (OLD.fingerprint, digits, digits.upper(), f" SHA256:{digits.upper()} "):
        assert normalise_fingerprint(typed) == OLD.fingerprint
    for wrong in ("", "sha256:", "sha256:12345", "sha1:" + digits, "xyz" + digits[3:]):
        with pytest.raises(ConfigurationError, match="sha256:1a2b3c4d"):
            normalise_fingerprint(wrong)
    with pytest.raises(ConfigurationError) as caught:
        normalise_fingerprint(OLD.reveal())
    assert OLD.reveal() not in str(caught.value)


def test_local_response_fails_while_the_new_key_is_the_leaked_one() -> None:
    ring = Keyring(OLD, registry=MemoryTokenStore())
    for _ in range(2):  # the reviewer's repro: both runs said "contained"
        report = org_key_leaked(ring, OLD, leaked=OLD.fingerprint[7:].upper())
        assert not report.ok
        assert [s.outcome for s in report.steps] == ["failed"]
        assert "the new key is the leaked key" in str(report.steps[0])
        assert ring.current == OLD  # nothing was rolled over or revoked
    # A mistyped fingerprint: the rollover happens, but containment is not confirmed.
    typo = org_key_leaked(ring, NEW, leaked="sha256:00000000")
    assert ring.current == NEW
    assert not typo.ok
    assert str(typo.steps[-1]).startswith(
        "[failed] confirm the leaked key is revoked: not verified"
    )
    # The right fingerprint: the leaked version is revoked here, so contained, and a rerun
    # changes nothing and stays contained.
    for _ in range(2):
        fixed = org_key_leaked(ring, NEW, leaked=OLD.fingerprint)
        assert fixed.ok, fixed.lines()
        assert not fixed.changed
    text = "\n".join(report.lines() + typo.lines() + fixed.lines())
    assert OLD.reveal() not in text
    assert NEW.reveal() not in text


@pytest.mark.timeout(120)
def test_command_against_a_proxy_process_whose_key_file_still_holds_the_leaked_key(
    upstream: BackgroundServer,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    key_file = servers.write_key_file(tmp_path / "org.key", OLD)
    process, url = _spawn_proxy(upstream.url, redis_url, key_file)
    try:
        token = _mint(url)
        servers.ask(url, token)
        # --leaked is required: a response that cannot tell which key leaked cannot check.
        with pytest.raises(SystemExit) as usage:
            main(["incident", "org-key-leaked", "--proxy", url])
        assert usage.value.code == 2
        assert main(["incident", "org-key-leaked", "--proxy", url, "--leaked", "nope"]) == 2
        assert "sha256:1a2b3c4d" in capsys.readouterr().err

        # The file was not rewritten: both runs fail (bare upper-case hex is accepted).
        leaked = ["--leaked", OLD.fingerprint[7:].upper()]
        for _ in range(2):
            assert main(["incident", "org-key-leaked", "--proxy", url, *leaked]) == 1
            out = capsys.readouterr().out
            assert f"org-key-leaked (proxy {url}): NOT fully contained" in out
            assert f"still uses the leaked key ({OLD.fingerprint})" in out
        fresh = _mint(url)
        servers.ask(url, fresh)
        assert _last_key_received(upstream) == OLD.fingerprint  # what "NOT contained" means

        # A mistyped fingerprint after the file was rewritten: rolled over, not verified.
        key_file.write_text(NEW.reveal() + "\n")
        assert main(["incident", "org-key-leaked", "--proxy", url, "--leaked", "0badc0de"]) == 1
        out = capsys.readouterr().out
        assert "[done] roll over the organisation key" in out
        assert "[failed] confirm the leaked key is revoked: not verified" in out

        # The right fingerprint: contained, and again on a rerun.
        for _ in range(2):
            assert main(["incident", "org-key-leaked", "--proxy", url, *leaked]) == 0
            out = capsys.readouterr().out
            assert f"org-key-leaked (proxy {url}): contained" in out
        for earlier in (token, fresh):
            with pytest.raises(anthropic.AuthenticationError):
                servers.ask(url, earlier)
        servers.ask(url, _mint(url))
        assert _last_key_received(upstream) == NEW.fingerprint
        captured = capsys.readouterr()
        for key in (OLD, NEW):
            assert key.reveal() not in captured.out + captured.err
    finally:
        servers.stop(process)


# -- F2: the user's key, looked for in the wrong place -------------------------------------


def _seed(url: str, namespace: str) -> str:
    """What r2 does: alice's key and a session in a BFF's Redis under ``namespace``."""

    async def main_() -> str:
        stores = redis_stores(url, idle_timeout=900, absolute_timeout=28800, namespace=namespace)
        await stores.keys.put("alice", KeyRecord("kms1.sealed-value", "sha256:0a0b0c0d"))
        session_id, _ = await stores.sessions.create("alice", time.time())
        assert stores.close is not None
        await stores.close()  # type: ignore[misc]
        return session_id

    return asyncio.run(main_())


def test_wrong_namespace_database_or_user_is_not_verified(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(redis_url, "prod-bff")
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    assert raw.get("prod-bff:meta") == MARKER
    base = ["incident", "user-key-leaked", "--no-token-proxy"]
    # Default namespace "bff": the marker is missing, so the two BFF steps fail.
    assert main([*base, "alice", "--bff-redis", redis_url]) == 1
    out = capsys.readouterr().out
    assert "user-key-leaked (user alice): NOT fully contained" in out
    assert "[failed] delete the stored key: no BFF data in Redis 127.0.0.1:" in out
    assert "namespace 'bff' (no bff:meta marker)" in out
    assert "checked: the BFF's Redis 127.0.0.1:" in out
    # The wrong database: the same.
    other_db = redis_url.rsplit("/", 1)[0] + "/3"
    assert main([*base, "alice", "--bff-redis", other_db, "--bff-namespace", "prod-bff"]) == 1
    assert "db 3, namespace 'prod-bff' (no prod-bff:meta marker)" in capsys.readouterr().out
    assert raw.exists("prod-bff:k:alice")
    assert raw.scard("prod-bff:su:alice") == 1
    # The right place, a mistyped user: nothing found anywhere and no record of "alcie".
    right = ["--bff-redis", redis_url, "--bff-namespace", "prod-bff"]
    assert main([*base, "alcie", *right]) == 1
    out = capsys.readouterr().out
    assert "[failed] confirm the user is known: not verified" in out
    # The right user: contained; the rerun finds nothing left and stays contained.
    assert main([*base, "alice", *right]) == 0
    out = capsys.readouterr().out
    assert "[done] delete the stored key: 1 key(s)" in out
    assert "[done] end sessions: 1 session(s)" in out
    assert not raw.exists("prod-bff:k:alice")
    assert main([*base, "alice", *right]) == 0
    out = capsys.readouterr().out
    assert "[nothing to do] end sessions: no session left" in out
    assert "confirm the user" not in out


def test_the_location_never_shows_the_urls_password() -> None:
    import redis.asyncio

    secret = "s3cr3t-in-the-url"
    client = redis.asyncio.Redis.from_url(f"redis://ops:{secret}@10.0.0.7:6380/2")
    stores = RedisStores(client, idle_timeout=60, absolute_timeout=600, namespace="prod-bff")
    assert stores.location() == "Redis 10.0.0.7:6380 db 2, namespace 'prod-bff'"
    assert secret not in stores.location()
    assert "ops" not in stores.location()


@pytest.mark.timeout(120)
def test_a_bff_process_marks_its_redis_and_the_wrong_database_is_caught(
    upstream: BackgroundServer, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from patterns.bff.client import BffClient
    from patterns.bff.vault import KEY_NAME

    kms_file = tmp_path / "bff-keys.json"
    LocalKms.from_passphrase(kms_file, PASSPHRASE).create_key(KEY_NAME)
    process, url = _spawn_bff(upstream.url, redis_url, kms_file)
    try:
        alice = BffClient(url).login("alice", PASSWORD)
        alice.store_key(OLD)
        raw = redis.Redis.from_url(redis_url, decode_responses=True)
        assert raw.get("bff:meta") == MARKER
        assert raw.sismember("bff:users", "alice")
        wrong = redis_url.rsplit("/", 1)[0] + "/1"
        command = ["incident", "user-key-leaked", "alice", "--no-token-proxy", "--bff-redis"]
        assert main([*command, wrong]) == 1
        assert "no BFF data in Redis" in capsys.readouterr().out
        assert alice.me()["has_key"] is True  # still there: the response said so
        assert main([*command, redis_url]) == 0
        assert alice.request("GET", "/auth/me").status_code == 401
        assert OLD.reveal() not in capsys.readouterr().out
    finally:
        servers.stop(process)


# -- F7c: a token minted by a live session during the response ------------------------------


def test_a_token_minted_while_sessions_are_still_alive_is_revoked_too() -> None:
    service = TokenService(MemoryTokenStore())
    before = service.mint("alice").token
    minted_during: list[str] = []

    class LiveSessions:
        """Ends alice's sessions, but one of them mints a token just before it ends."""

        def end_user_sessions(self, user_id: str) -> int:
            minted_during.append(service.mint(user_id).token)
            return 1

    report = user_key_leaked("alice", tokens=service, sessions=LiveSessions())
    assert str(report.steps[0]) == "[done] revoke temporary tokens: 2 token(s)"
    for token in (before, *minted_during):
        with pytest.raises(TokenRejected):
            service.redeem(token)


def test_in_process_memory_stores_know_their_users() -> None:
    """The memory stores answer user_known too: a mistyped user against an in-process BFF
    is "not verified", a known user with nothing left is contained."""
    from patterns.bff.stores import memory_stores
    from patterns.lifecycle.incidents import NOT_DEPLOYED, bff_user_stores

    stores = memory_stores(900, 28800)

    async def seed() -> None:
        await stores.keys.put("alice", KeyRecord("kms1.sealed-value", "sha256:0a0b0c0d"))
        await stores.sessions.create("alice", 0.0)

    asyncio.run(seed())
    keys, sessions = bff_user_stores(stores)
    typo = user_key_leaked("alcie", tokens=NOT_DEPLOYED, keys=keys, sessions=sessions)
    assert not typo.ok
    assert str(typo.steps[-1]).startswith("[failed] confirm the user is known: not verified")
    first = user_key_leaked("alice", tokens=NOT_DEPLOYED, keys=keys, sessions=sessions)
    again = user_key_leaked("alice", tokens=NOT_DEPLOYED, keys=keys, sessions=sessions)
    assert first.ok
    assert first.changed
    assert again.ok
    assert len(again.steps) == 3  # nothing left, and alice is known: no extra step


def test_redis_knows_users_from_before_the_users_set(redis_url: str) -> None:
    """A user with only a usage record (a BFF from before {ns}:users) is known; a BFF that
    calls mark() at start-up is recognisable before its first user."""

    async def scenario() -> None:
        stores = redis_stores(redis_url, idle_timeout=900, absolute_timeout=28800)
        sessions = stores.sessions
        assert isinstance(sessions, RedisStores)
        try:
            with pytest.raises(ConfigurationError, match="no BFF data"):
                await sessions.verify_location()
            await sessions.mark()
            await sessions.verify_location()
            assert not await sessions.user_known("carol")
            await stores.usage.add("carol", 1, 10, 5)
            assert await sessions.user_known("carol")
        finally:
            assert stores.close is not None
            await stores.close()  # type: ignore[misc]

    asyncio.run(scenario())


def test_scan_sessions_ends_a_session_the_index_never_saw(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """F4's remaining window: a session written before the index that made no request
    since. The index cannot see it; --scan-sessions finds it by scanning session keys."""
    from patterns.bff.stores import hash_session_id, new_session_id

    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    old = [new_session_id() for _ in range(3)]
    for owner, session_id in zip(("alice", "alice", "bob"), old, strict=True):
        fields: Any = {"user": owner, "csrf": "c", "created": repr(now), "seen": repr(now)}
        raw.hset(f"bff:s:{hash_session_id(session_id)}", mapping=fields)
        raw.pexpire(f"bff:s:{hash_session_id(session_id)}", 900_000)
    _seed(redis_url, "bff")  # an upgraded BFF: marker, alice's key and one indexed session
    command = ["incident", "user-key-leaked", "alice", "--no-token-proxy"]
    command += ["--bff-redis", redis_url]
    assert main(command) == 0
    assert "[done] end sessions: 1 session(s)" in capsys.readouterr().out  # the indexed one
    assert raw.exists(f"bff:s:{hash_session_id(old[0])}")  # what the index cannot see
    assert main([*command, "--scan-sessions"]) == 0
    assert "[done] end sessions: 2 session(s)" in capsys.readouterr().out
    assert not raw.exists(f"bff:s:{hash_session_id(old[0])}")
    assert not raw.exists(f"bff:s:{hash_session_id(old[1])}")
    assert raw.exists(f"bff:s:{hash_session_id(old[2])}")  # bob's stays
