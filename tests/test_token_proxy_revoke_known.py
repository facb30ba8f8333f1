"""The token proxy's per-user revoke says whether it knew the user (``known``), and the
incident response uses it: memory and Redis stores (two replicas on one Redis), a user
minted then revoked (known, also on the rerun), a user never seen (not "contained"), and a
proxy from before ``known`` (not verified, fail closed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from patterns.__main__ import main
from patterns.clock import FakeClock
from patterns.keys import ApiKey, canary_key
from patterns.lifecycle.incidents import user_key_leaked
from patterns.lifecycle.remote import RemoteUserTokens, revoke_user_tokens
from patterns.serving import BackgroundServer
from patterns.tokens import MemoryTokenStore, RedisTokenStore, TokenService
from patterns.tokens.proxy import MintRequest, ProxySettings, create_app

ISSUER = ApiKey("issuer-secret-for-revoke-known-" + "k" * 10)
ORG_KEY = canary_key()
DAY = 24 * 3600.0
UPSTREAM = "http://127.0.0.1:9"  # never called: only the issuer routes are used here


@pytest.fixture(autouse=True)
def _issuer_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the incident command and RemoteUserTokens read the issuer secret from."""
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {ISSUER.reveal()}"}


def _mint(url: str, user: str) -> dict[str, object]:
    response = httpx.post(f"{url}/tokens", json={"user_id": user}, headers=_auth())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _revoke(url: str, user: str) -> dict[str, object]:
    response = httpx.delete(f"{url}/users/{user}/tokens", headers=_auth())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "redis"])
def proxies(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Two proxy replicas on one store: the same memory store in-process, or one Redis."""
    if request.param == "memory":
        shared = MemoryTokenStore()
        stores: list[MemoryTokenStore | RedisTokenStore] = [shared, shared]
    else:
        url = request.getfixturevalue("redis_url")
        stores = [RedisTokenStore.from_url(url), RedisTokenStore.from_url(url)]
    with ExitStack() as stack:
        urls = []
        for store in stores:
            app = create_app(
                TokenService(store), ProxySettings(UPSTREAM, {"default": ORG_KEY}, ISSUER)
            )
            urls.append(stack.enter_context(BackgroundServer(app)).url)
        yield urls


def test_a_user_minted_then_revoked_is_known_and_a_stranger_is_not(proxies: list[str]) -> None:
    first, second = proxies
    minted = _mint(first, "alice")
    assert _revoke(second, "alice") == {"revoked": 1, "known": True}  # the other replica
    assert _revoke(first, "alice") == {"revoked": 0, "known": True}  # the rerun: nothing left
    answer = _revoke(second, "mallory")
    assert answer == {"revoked": 0, "known": False}
    assert str(minted["token"]) not in repr(answer)


def test_the_incident_command_is_not_contained_for_a_user_the_proxy_never_knew(
    proxies: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = proxies
    _mint(first, "alice")
    for user, url in (("alice", second), ("alice", first)):  # revoke, then the rerun
        assert main(["incident", "user-key-leaked", user, "--proxy", url]) == 1  # no BFF given
        out = capsys.readouterr().out
        assert "not verified" not in out
        assert f"checked: the token proxy at {url}" in out
    assert "[nothing to do] revoke temporary tokens: no token left" in out
    assert main(["incident", "user-key-leaked", "alcie", "--proxy", second]) == 1
    out = capsys.readouterr().out
    assert "user-key-leaked (user alcie): NOT fully contained" in out
    assert "[failed] revoke temporary tokens: not verified" in out
    assert "no record of user 'alcie'" in out
    assert "check the user id" in out
    assert ISSUER.reveal() not in out


def test_the_python_response_fails_the_token_step_for_an_unknown_user(proxies: list[str]) -> None:
    first, _ = proxies
    _mint(first, "alice")
    known = user_key_leaked("alice", tokens=RemoteUserTokens(first))
    assert str(known.steps[0]) == "[done] revoke temporary tokens: 1 token(s)"
    unknown = user_key_leaked("bob", tokens=RemoteUserTokens(first))
    assert unknown.steps[0].outcome == "failed"
    assert unknown.steps[0].detail.startswith("not verified: revoked nothing")
    assert not unknown.ok


# -- stores: what is remembered, for how long, shared by replicas ----------------------------


def test_memory_store_remembers_users_for_the_retention_and_a_bounded_number() -> None:
    clock = FakeClock(1_900_000_000.0)
    store = MemoryTokenStore(user_retention=2 * DAY, max_users=2)
    service = TokenService(store, ttl=600, clock=clock)
    service.mint("alice")
    assert service.issued_to("alice")
    assert not service.issued_to("bob")
    assert service.revoke_user("alice") == 1
    assert service.issued_to("alice")  # revoked, and still known: a rerun is not "unknown"
    clock.advance(2 * DAY - 1)
    assert service.issued_to("alice")
    clock.advance(1)
    assert not service.issued_to("alice")  # forgotten after the retention
    for user in ("u1", "u2", "u3"):
        service.mint(user)
    assert [service.issued_to(u) for u in ("u1", "u2", "u3")] == [True, True, True]
    service.revoke_user("u1")  # no live token any more: only the bounded record remained
    assert not service.issued_to("u1")  # the oldest went first when u3 came
    with pytest.raises(ValueError, match="user_retention"):
        MemoryTokenStore(user_retention=0)


def test_memory_store_never_forgets_a_user_with_a_live_token() -> None:
    clock = FakeClock(1_900_000_000.0)
    service = TokenService(MemoryTokenStore(user_retention=60), ttl=DAY, clock=clock)
    service.mint("alice")
    clock.advance(DAY - 1)
    assert service.issued_to("alice")  # the retention is never shorter than a token's life


def test_redis_store_remembers_users_with_an_expiry_shared_by_replicas(redis_url: str) -> None:
    import redis

    clock = FakeClock(1_900_000_000.0)
    one = TokenService(RedisTokenStore.from_url(redis_url, user_retention=DAY), clock=clock)
    two = TokenService(RedisTokenStore.from_url(redis_url, user_retention=DAY), clock=clock)
    minted = one.mint("alice")
    assert two.issued_to("alice")
    assert not two.issued_to("bob")
    assert two.revoke_user("alice") == 1
    assert one.issued_to("alice")
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert 0 < client.pttl("akp:tokens:seen:alice") <= DAY * 1000
        assert minted.token not in repr(client.get("akp:tokens:seen:alice"))
        # A token minted before the store remembered users: its live index still counts.
        client.delete("akp:tokens:seen:alice")
        one.mint("carol")
        client.delete("akp:tokens:seen:carol")
    assert not one.issued_to("alice")
    assert one.issued_to("carol")
    clock.advance(DAY)
    two.mint("dave")
    two.revoke_user("dave")  # Redis expires the live index in real time, not on this clock
    clock.advance(DAY - 1)
    assert one.issued_to("dave")
    clock.advance(1)
    assert not one.issued_to("dave")  # the caller's clock decides, as for token expiry


# -- the remote client: old proxies and odd answers fail closed ------------------------------


def _fake_proxy(answer: object) -> FastAPI:
    app = FastAPI()

    @app.delete("/users/{user_id}/tokens")
    async def revoke_user(user_id: str) -> JSONResponse:
        return JSONResponse(answer)

    return app


@pytest.mark.parametrize("known", [None, "yes", 1])
def test_an_answer_without_a_boolean_known_is_not_verified(
    known: object, capsys: pytest.CaptureFixture[str]
) -> None:
    answer: dict[str, object] = {"revoked": 0}
    if known is not None:
        answer["known"] = known
    with BackgroundServer(_fake_proxy(answer)) as old:
        tokens = RemoteUserTokens(old.url)
        report = user_key_leaked("alice", tokens=tokens)
        assert report.steps[0].outcome == "failed"
        assert report.steps[0].detail.startswith("not verified: the token proxy at")
        assert "does not say whether it knew user 'alice'" in report.steps[0].detail
        assert "upgrade it" in report.steps[0].detail
        assert main(["incident", "user-key-leaked", "alice", "--proxy", old.url]) == 1
        assert "[failed] revoke temporary tokens: not verified" in capsys.readouterr().out


def test_an_old_proxy_that_revoked_tokens_still_reports_them() -> None:
    with BackgroundServer(_fake_proxy({"revoked": 2})) as old:
        report = user_key_leaked("alice", tokens=RemoteUserTokens(old.url))
    # Revoking is proof enough that it knew the user (asked twice: 2 each time, here).
    assert str(report.steps[0]) == "[done] revoke temporary tokens: 4 token(s)"


@pytest.mark.parametrize("answer", [{"known": True}, {"revoked": "3"}, ["revoked"], "ok"])
def test_an_answer_that_is_not_a_revocation_fails_the_step(answer: object) -> None:
    with BackgroundServer(_fake_proxy(answer)) as wrong:
        report = user_key_leaked("alice", tokens=RemoteUserTokens(wrong.url))
        with pytest.raises(Exception, match="is it the token proxy"):
            revoke_user_tokens(wrong.url, "alice")
    assert report.steps[0].outcome == "failed"
    assert "is it the token proxy" in report.steps[0].detail


def test_user_known_before_any_answer_cannot_say_and_urls_hide_passwords() -> None:
    tokens = RemoteUserTokens("https://ops:hunter2@proxy.example:8443/")
    assert tokens.user_known("alice") is None
    assert tokens.shown() == "https://proxy.example:8443/"
    assert MintRequest(user_id="a").user_id == "a"  # still importable from the proxy module
