"""Incident response: user key leaked (token service part, protocols for the BFF stores),
organisation key leaked (keyring, and over HTTP against a running proxy), KMS key
compromised (rotate, rewrap, retire; never retire while a secret needs the old version).
Each runs twice: the second run finds nothing to do. Nothing prints a key."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anthropic
import pytest

from patterns.__main__ import main
from patterns.clock import FakeClock
from patterns.errors import ConfigurationError, KmsError
from patterns.keys import ApiKey, canary_key, demo_key
from patterns.kms import AuditLog, LocalKms, read_audit_log, seal, unseal_api_key, verify_audit_log
from patterns.lifecycle.incidents import (
    UserKeys,
    UserSessions,
    UserTokens,
    kms_key_compromised,
    org_key_leaked,
    user_key_leaked,
)
from patterns.lifecycle.sealed import MemorySealedStore, SealedDirectory
from patterns.serving import BackgroundServer, free_port
from patterns.tokens import MemoryTokenStore, TokenService
from patterns.tokens.keyring import Keyring, key_file_source
from patterns.tokens.proxy import ProxySettings, create_app
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from tests import servers

ISSUER = ApiKey("issuer-secret-for-incident-tests-" + "y" * 8)
MASTER = os.urandom(32)


class DictKeys:
    """A user-key store as the BFF would adapt its own: sealed values by user."""

    def __init__(self) -> None:
        self.sealed: dict[str, str] = {}

    def delete_user_key(self, user_id: str) -> bool:
        return self.sealed.pop(user_id, None) is not None


class DictSessions:
    def __init__(self) -> None:
        self.sessions: dict[str, str] = {}  # session id -> user

    def end_user_sessions(self, user_id: str) -> int:
        ended = [sid for sid, user in self.sessions.items() if user == user_id]
        for sid in ended:
            del self.sessions[sid]
        return len(ended)


def test_user_key_leaked_contains_everything_once(tmp_path: Path) -> None:
    service = TokenService(MemoryTokenStore(), clock=FakeClock(1_900_000_000))
    minted = [service.mint("alice") for _ in range(3)] + [service.mint("bob")]
    keys, sessions = DictKeys(), DictSessions()
    keys.sealed.update(alice="kms1.a.b", bob="kms1.c.d")
    sessions.sessions.update(s1="alice", s2="alice", s3="bob")
    assert isinstance(service, UserTokens)
    assert isinstance(keys, UserKeys)
    assert isinstance(sessions, UserSessions)
    audit = AuditLog(tmp_path / "incidents.jsonl")
    report = user_key_leaked("alice", tokens=service, keys=keys, sessions=sessions, audit=audit)
    assert report.ok
    assert report.changed
    assert [str(s) for s in report.steps] == [
        "[done] revoke temporary tokens: 3 token(s)",
        "[done] delete the stored key: 1 key(s)",
        "[done] end sessions: 2 session(s)",
    ]
    assert "Anthropic Console" in report.lines()[-1]
    for token in minted[:3]:
        with pytest.raises(Exception, match="not valid"):
            service.redeem(token.token)
    service.redeem(minted[3].token)  # bob is untouched
    assert keys.sealed == {"bob": "kms1.c.d"}
    assert sessions.sessions == {"s3": "bob"}
    again = user_key_leaked("alice", tokens=service, keys=keys, sessions=sessions, audit=audit)
    assert not again.changed
    assert {s.outcome for s in again.steps} == {"nothing to do"}
    partial = user_key_leaked("carol", tokens=service)  # never issued a token: a typo?
    assert [s.outcome for s in partial.steps] == ["failed", "skipped", "skipped"]
    assert "not verified" in partial.steps[0].detail
    assert not partial.ok
    entries = read_audit_log(tmp_path / "incidents.jsonl")
    assert [e["operation"] for e in entries] == ["incident.user-key-leaked"] * 2
    assert entries[0]["context"] == {"user": "alice"}
    assert verify_audit_log(tmp_path / "incidents.jsonl").ok


def test_org_key_leaked_with_a_keyring() -> None:
    old, new = canary_key(), canary_key()
    clock = FakeClock(0)
    keyring = Keyring(old, clock=clock)
    service = TokenService(MemoryTokenStore(), clock=clock)
    keyring.attach(service)
    grant = service.redeem(service.mint("alice").token)
    assert keyring.get(grant.key_ref) == old
    report = org_key_leaked(keyring, new, leaked=old.fingerprint)
    assert [s.outcome for s in report.steps] == ["done", "done"]
    with pytest.raises(Exception, match="revoked"):
        keyring.get(grant.key_ref)
    fresh = service.redeem(service.mint("alice").token)
    assert keyring.get(fresh.key_ref) == new
    again = org_key_leaked(keyring, new, leaked=old.fingerprint)
    assert not again.changed
    text = "\n".join(report.lines() + again.lines())
    assert old.reveal() not in text
    assert new.reveal() not in text


def test_kms_key_compromised_retires_only_after_every_secret_moved(tmp_path: Path) -> None:
    kms = LocalKms(tmp_path / "keys.json", master_key=MASTER)
    key_id = kms.create_key("tenant")
    store = MemorySealedStore()
    keys = {}
    for user in ("a", "b", "c"):
        keys[user] = demo_key(user)
        store.put(user, seal(keys[user], kms, key_id, {"user": user}), {"user": user})
    old_copy = store.get("a")  # e.g. in a backup the attacker also has
    store.put("bad", seal(demo_key("bad"), kms, key_id, {"user": "bad"}), {"user": "someone"})
    first = kms_key_compromised(kms, key_id, store, compromised_version=1)
    assert not first.ok
    assert [s.outcome for s in first.steps] == ["done", "failed", "failed"]
    assert "bad" in str(first.steps[1])
    assert kms.key_info(key_id).min_decryption_version == 1  # not retired: "bad" needs it
    store._values.pop("bad")  # an operator fixes the row (here: removes it)
    second = kms_key_compromised(kms, key_id, store, compromised_version=1)
    assert second.ok
    assert [s.outcome for s in second.steps] == ["nothing to do", "nothing to do", "done"]
    assert kms.key_info(key_id).min_decryption_version == 2
    for user in ("a", "b", "c"):
        assert unseal_api_key(store.get(user), kms, {"user": user}) == keys[user]
    with pytest.raises(KmsError):
        unseal_api_key(old_copy, kms, {"user": "a"})  # the compromised version is refused
    third = kms_key_compromised(kms, key_id, store, compromised_version=1)
    assert not third.changed
    assert third.ok
    with pytest.raises(ConfigurationError, match="between 1 and 2"):
        kms_key_compromised(kms, key_id, store, compromised_version=3)


# -- the CLI against a running proxy and a key directory ------------------------------------


@pytest.fixture
def running_proxy(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, Path, ApiKey, ApiKey]]:
    old, new = canary_key(), canary_key()
    upstream = servers.stand_in(old, new, limits=RateLimits(10_000, 10**7, 10**7))
    key_file = tmp_path / "org.key"
    key_file.write_text(old.reveal())
    key_file.chmod(0o600)
    keyring = Keyring(old, source=key_file_source(key_file))
    service = TokenService(MemoryTokenStore())
    keyring.attach(service)
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    with (
        upstream,
        BackgroundServer(
            create_app(service, ProxySettings(upstream.url, keyring, ISSUER))
        ) as proxy,
    ):
        yield proxy.url, key_file, old, new


_mint = partial(servers.mint, issuer=ISSUER)


def test_incident_commands_against_a_running_proxy(running_proxy, capsys) -> None:
    url, key_file, old, new = running_proxy
    alice, bob = _mint(url, "alice"), _mint(url, "bob")
    # Exit 1: the BFF's key and session stores were not given, so the leak is only partly
    # contained, and the report must say so rather than "contained".
    assert main(["incident", "user-key-leaked", "alice", "--proxy", url]) == 1
    out = capsys.readouterr().out
    assert "NOT fully contained" in out
    assert "[done] revoke temporary tokens: 1 token(s)" in out
    assert "[skipped] delete the stored key" in out
    with pytest.raises(anthropic.AuthenticationError):
        servers.ask(url, alice)
    servers.ask(url, bob)
    assert main(["incident", "user-key-leaked", "alice", "--proxy", url]) == 1
    assert "[nothing to do] revoke temporary tokens" in capsys.readouterr().out

    # Organisation key leaked, but the key file was not updated yet: refuse to claim success.
    assert main(["incident", "org-key-leaked", "--proxy", url, "--leaked", old.fingerprint]) == 1
    out = capsys.readouterr().out
    assert "still uses the leaked key" in out
    assert "[done] revoke tokens of older key versions: default" in out  # pre-keyring tokens
    key_file.write_text(new.reveal())
    assert main(["incident", "org-key-leaked", "--proxy", url, "--leaked", old.fingerprint]) == 0
    out = capsys.readouterr().out
    assert (
        f"[done] roll over the organisation key: now org-{new.fingerprint[7:]} ({new.fingerprint})"
        in out
    )
    assert f"[done] revoke tokens of older key versions: org-{old.fingerprint[7:]}" in out
    with pytest.raises(anthropic.AuthenticationError, match="revoked"):
        servers.ask(url, bob)
    servers.ask(url, _mint(url, "bob"))
    assert main(["incident", "org-key-leaked", "--proxy", url, "--leaked", old.fingerprint]) == 0
    out = capsys.readouterr().out
    assert "[nothing to do] roll over" in out
    assert "[nothing to do] revoke tokens" in out
    captured = capsys.readouterr()
    assert old.reveal() not in captured.out + captured.err


def test_rotate_org_key_command_and_errors(running_proxy, capsys, monkeypatch) -> None:
    url, key_file, _, new = running_proxy
    key_file.write_text(new.reveal())
    assert main(["rotate-org-key", "--proxy", url, "--grace", "60"]) == 0
    out = capsys.readouterr().out
    assert f"new tokens use org-{new.fingerprint[7:]} ({new.fingerprint})" in out
    assert "delete it in the Anthropic Console after" in out
    key_file.chmod(0o644)
    assert main(["rotate-org-key", "--proxy", url]) == 2
    assert "chmod 600" in capsys.readouterr().err
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", "wrong-secret-" + "z" * 30)
    assert main(["rotate-org-key", "--proxy", url]) == 2
    assert "issuer secret" in capsys.readouterr().err
    monkeypatch.delenv("PATTERNS_TOKEN_ISSUER_SECRET")
    assert main(["rotate-org-key", "--proxy", url]) == 2
    assert "PATTERNS_TOKEN_ISSUER_SECRET" in capsys.readouterr().err
    assert main(["rotate-org-key", "--proxy", "http://127.0.0.1:9"]) == 2


def test_kms_key_compromised_command(tmp_path: Path, capsys, monkeypatch) -> None:
    kms = LocalKms(tmp_path / "keys.json", master_key=MASTER)
    key_id = kms.create_key("tenant")
    secrets_dir = tmp_path / "s"
    secrets_dir.mkdir()
    store = SealedDirectory(secrets_dir)
    for user in ("a", "b"):
        store.put(user, seal(demo_key(user), kms, key_id, {"user": user}), {"user": user})
    monkeypatch.setenv("PATTERNS_KMS_MASTER_KEY", base64.urlsafe_b64encode(MASTER).decode())
    args = [
        "incident",
        "--incident-audit",
        str(tmp_path / "incidents.jsonl"),
        "kms-key-compromised",
        "--key-id",
        key_id,
        "--version",
        "1",
        "--secrets",
        str(secrets_dir),
        "--kms-file",
        str(tmp_path / "keys.json"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "kms-key-compromised" in out
    assert "[done] refuse versions 1 to 1: minimum decryption version is now 2" in out
    assert main(args) == 0
    assert "[done]" not in capsys.readouterr().out
    assert [e["outcome"] for e in read_audit_log(tmp_path / "incidents.jsonl")] == ["ok", "ok"]


def test_the_bff_key_store_plugs_in_through_the_async_adapter() -> None:
    from patterns.bff.stores import KeyRecord, MemoryKeyStore
    from patterns.lifecycle.incidents import AsyncKeyStoreKeys

    store = MemoryKeyStore()
    asyncio.run(store.put("alice", KeyRecord("kms1.sealed.value", "sha256:00000000")))
    keys = AsyncKeyStoreKeys(store)
    assert isinstance(keys, UserKeys)
    report = user_key_leaked("alice", keys=keys)
    assert [s.outcome for s in report.steps] == ["skipped", "done", "skipped"]
    assert store.raw() == {}
    assert [s.outcome for s in user_key_leaked("alice", keys=keys).steps][1] == "nothing to do"


def test_one_unreachable_replica_does_not_stop_the_others(running_proxy, capsys) -> None:
    url, key_file, _, new = running_proxy
    dead = f"http://127.0.0.1:{free_port()}"
    key_file.write_text(new.reveal())
    assert main(["rotate-org-key", "--proxy", dead, "--proxy", url, "--grace", "60"]) == 2
    captured = capsys.readouterr()
    assert f"rotate-org-key: {dead}: cannot reach the token proxy" in captured.err
    assert f"new tokens use org-{new.fingerprint[7:]}" in captured.out  # the live one rolled
    leaked = ["--leaked", "sha256:00000000"]  # not this proxy's: its report fails too
    status = main(["incident", "org-key-leaked", "--proxy", dead, "--proxy", url, *leaked])
    out = capsys.readouterr().out
    assert status == 1
    assert f"org-key-leaked (proxy {dead}): NOT fully contained" in out
    assert f"org-key-leaked (proxy {url})" in out


# -- the BFF: sessions and keys, in process and through the CLI against its Redis ----------

BFF_PASSWORD = "correct horse battery staple"
BFF_PASSPHRASE = "a passphrase for the incident test"


def test_user_key_leaked_against_an_in_process_bff() -> None:
    from patterns.bff import BffSettings, UserDirectory, bff_of
    from patterns.bff import create_app as create_bff
    from patterns.bff.client import BffClient
    from patterns.lifecycle.incidents import AsyncSessionStoreSessions, bff_user_stores

    user_key = canary_key()
    users = UserDirectory()
    users.add("alice", BFF_PASSWORD)
    users.add("bob", BFF_PASSWORD)
    with (
        BackgroundServer(create_upstream(UpstreamSettings(api_keys=(user_key,)))) as upstream,
        BackgroundServer(create_bff(BffSettings(upstream.url), users=users)) as server,
    ):
        alice = [BffClient(server.url).login("alice", BFF_PASSWORD) for _ in range(2)]
        alice[0].store_key(user_key)
        bob = BffClient(server.url).login("bob", BFF_PASSWORD)
        bob.store_key(user_key)
        alice[1].sdk().messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
        service = TokenService(MemoryTokenStore())
        service.mint("alice")
        keys, sessions = bff_user_stores(bff_of(server.app).stores)
        assert isinstance(sessions, AsyncSessionStoreSessions)
        assert isinstance(sessions, UserSessions)
        report = user_key_leaked("alice", tokens=service, keys=keys, sessions=sessions)
        assert report.lines()[0] == "user-key-leaked (user alice): contained"
        assert [str(s) for s in report.steps] == [
            "[done] revoke temporary tokens: 1 token(s)",
            "[done] delete the stored key: 1 key(s)",
            "[done] end sessions: 2 session(s)",
        ]
        for client in alice:  # each cookie is dead, and replaying it does not help
            assert client.request("GET", "/auth/me").status_code == 401
        with pytest.raises(anthropic.AuthenticationError):
            alice[1].sdk().messages.create(
                model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        again = BffClient(server.url).login("alice", BFF_PASSWORD)
        assert again.me()["has_key"] is False
        with pytest.raises(anthropic.BadRequestError, match="no Anthropic key stored"):
            again.sdk().messages.create(  # the unsealed key cached in the BFF is not used
                model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert bob.me()["has_key"] is True  # nobody else is touched
        rerun = user_key_leaked("alice", tokens=service, keys=keys, sessions=sessions)
        assert [s.outcome for s in rerun.steps] == ["nothing to do", "nothing to do", "done"]
        assert "1 session(s)" in str(rerun.steps[2])  # the sign-in just above
        assert user_key.reveal() not in "\n".join(report.lines() + rerun.lines())


def test_the_adapters_work_inside_a_running_event_loop() -> None:
    """Jupyter runs cells inside an event loop: asyncio.run() would refuse there."""
    from patterns.bff.stores import MemorySessionStore
    from patterns.lifecycle.incidents import AsyncSessionStoreSessions

    store = MemorySessionStore(60, 600)

    async def cell() -> int:
        await store.create("alice", 0.0)
        return AsyncSessionStoreSessions(store).end_user_sessions("alice")

    assert asyncio.run(cell()) == 1


def test_not_deployed_is_nothing_to_do_and_a_failing_store_fails_its_step() -> None:
    from patterns.errors import StoreUnavailable
    from patterns.lifecycle.incidents import NOT_DEPLOYED

    class Down:
        def end_user_sessions(self, user_id: str) -> int:
            raise StoreUnavailable("the session store (Redis) is unavailable (ConnectionError)")

    keys = DictKeys()
    keys.sealed["alice"] = "kms1.x.y"
    report = user_key_leaked("alice", tokens=NOT_DEPLOYED, keys=keys, sessions=Down())
    assert [str(s) for s in report.steps] == [
        "[nothing to do] revoke temporary tokens: no token store in this deployment",
        "[done] delete the stored key: 1 key(s)",
        "[failed] end sessions: the session store (Redis) is unavailable (ConnectionError)",
    ]
    assert not report.ok
    assert keys.sealed == {}  # the steps after a failure still ran


_start_bff = partial(
    servers.spawn_bff,
    passphrase=BFF_PASSPHRASE,
    users={"alice": BFF_PASSWORD, "bob": BFF_PASSWORD},
)


@pytest.mark.timeout(120)
def test_user_key_leaked_command_against_a_bff_process_on_redis(
    running_proxy, redis_url: str, tmp_path: Path, capsys
) -> None:
    from patterns.bff.client import BffClient
    from patterns.bff.vault import KEY_NAME

    proxy_url, _, user_key, _ = running_proxy
    key_file = tmp_path / "bff-keys.json"
    LocalKms.from_passphrase(key_file, BFF_PASSPHRASE).create_key(KEY_NAME)
    with servers.stand_in(user_key, limits=RateLimits()) as upstream:
        process, url = _start_bff(upstream.url, redis_url, key_file)
        try:
            alice = BffClient(url).login("alice", BFF_PASSWORD)
            alice.store_key(user_key)
            bob = BffClient(url).login("bob", BFF_PASSWORD)
            bob.store_key(user_key)
            token = _mint(proxy_url, "alice")
            audit = tmp_path / "incidents.jsonl"
            command = ["incident", "--incident-audit", str(audit), "user-key-leaked", "alice"]
            command += ["--bff-redis", redis_url, "--proxy", proxy_url]
            assert main(command) == 0
            out = capsys.readouterr().out
            assert out.splitlines()[:4] == [
                "user-key-leaked (user alice): contained",
                "  [done] revoke temporary tokens: 1 token(s)",
                "  [done] delete the stored key: 1 key(s)",
                "  [done] end sessions: 1 session(s)",
            ]
            assert alice.request("GET", "/auth/me").status_code == 401
            with pytest.raises(anthropic.AuthenticationError):
                servers.ask(proxy_url, token)
            assert BffClient(url).login("alice", BFF_PASSWORD).me()["has_key"] is False
            assert bob.me()["has_key"] is True
            # A rerun finds nothing left but the session signed in just above.
            assert main(command) == 0
            out = capsys.readouterr().out
            assert "[nothing to do] revoke temporary tokens" in out
            assert "[nothing to do] delete the stored key" in out
            # Without the proxy: its step is skipped, so not contained (exit 1) ...
            assert main(["incident", "user-key-leaked", "alice", "--bff-redis", redis_url]) == 1
            assert "[skipped] revoke temporary tokens" in capsys.readouterr().out
            # ... unless the deployment has none.
            no_proxy = ["incident", "user-key-leaked", "bob", "--bff-redis", redis_url]
            assert main([*no_proxy, "--no-token-proxy"]) == 0
            out = capsys.readouterr().out
            assert "[nothing to do] revoke temporary tokens: no token store" in out
            assert "[done] end sessions: 1 session(s)" in out
            assert bob.request("GET", "/auth/me").status_code == 401
            assert [e["outcome"] for e in read_audit_log(audit)] == ["ok", "ok"]
            assert verify_audit_log(audit).ok
        finally:
            servers.stop(process)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    status = main(["incident", "user-key-leaked", "alice", "--bff-redis", dead, "--no-token-proxy"])
    out = capsys.readouterr().out
    assert status == 1
    assert "[failed] delete the stored key: the session store (Redis) is unavailable" in out
    assert "[failed] end sessions" in out
    assert dead not in out
    assert user_key.reveal() not in out


def test_lifecycle_commands_do_not_import_fastapi() -> None:
    probe = (
        "import argparse, sys\n"
        "from patterns.lifecycle import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_commands(parser.add_subparsers())\n"
        "for argv in (['key-age', '--help'], ['incident', 'user-key-leaked', '--help']):\n"
        "    try:\n"
        "        parser.parse_args(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'redis')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_proxy_url_is_shown_without_its_credentials_or_query() -> None:
    from patterns.lifecycle.remote import shown

    url = "https://ops:s3cret@proxy.example:8443/base?token=abc"
    assert shown(url) == "https://proxy.example:8443/base"
    assert shown("http://[::1]:8421") == "http://[::1]:8421"
