"""Notebook 05's attack lab: the attacks on a BFF, run for real, one set of defences at a time.

:func:`run_attacks` starts a BFF (in this process, on loopback) with the given
:class:`~patterns.bff.settings.Defences` in front of a running stand-in, plays each attack
over real HTTP and reports whether it succeeded and what stopped it. With every defence on,
every attack fails; the widget turns defences off to show which attack each one stops.

One attack is a rule of the browser, not of the server: whether injected script can read the
session cookie. The lab reads the real ``Set-Cookie`` the BFF sent and applies the browser's
rule (``document.cookie`` lists only cookies without ``HttpOnly``); the Chromium test of the
demo page checks the same rule in a real browser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from patterns.bff.app import create_app
from patterns.bff.client import BffClient
from patterns.bff.context import bff_of
from patterns.bff.passwords import Argon2Parameters, UserDirectory
from patterns.bff.settings import BffSettings, Defences, RateLimit
from patterns.bff.stores import MemoryKeyStore
from patterns.clock import FakeClock
from patterns.keys import ApiKey
from patterns.serving import BackgroundServer

__all__ = ["ATTACKS", "AttackResult", "lab_users", "run_attacks", "without"]

EVIL_ORIGIN = "https://evil.example"
_PASSWORDS = {"alice": "alice's long password", "mallory": "mallory's long password"}

#: Attack name -> the defence that stops it (shown next to each result).
ATTACKS: dict[str, str] = {
    "steal the session from injected script": "http_only_cookie",
    "CSRF from another origin (no token)": "origin_check + csrf_token",
    "CSRF from another origin (token leaked)": "origin_check",
    "CSRF from this origin, no token (e.g. a same-site form)": "csrf_token",
    "replay a session after logout": "server_side_logout",
    "read another user's key": "per-user vault, context-bound sealing",
    "disallowed model, huge max_tokens, extra tools": "request_validation",
    "burst of 15 calls in a second": "rate_limit",
}


@dataclass(frozen=True, slots=True)
class AttackResult:
    name: str
    succeeded: bool
    detail: str

    @property
    def stopped_by(self) -> str:
        return ATTACKS[self.name]

    def as_row(self) -> str:
        mark = "SUCCEEDED" if self.succeeded else "blocked"
        return f"{mark:<9}  {self.name:<56}  {self.detail}"


def lab_users() -> UserDirectory:
    """Alice (the victim) and mallory (an attacker with an account). Cheap Argon2 parameters:
    the lab starts a BFF per run, and what it shows does not depend on the hashing cost."""
    users = UserDirectory(Argon2Parameters(memory_kib=8 * 1024, iterations=1))
    for name, password in _PASSWORDS.items():
        users.add(name, password)
    return users


def _status(response: httpx.Response) -> str:
    try:
        return f"{response.status_code} {response.json()['error']['type']}"
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)


class _Lab:
    """One running BFF and its victim; each method plays one attack."""

    def __init__(self, app: object, settings: BffSettings, url: str, key: ApiKey) -> None:
        self.app, self.settings, self.url, self.key = app, settings, url, key
        self.alice = self.sign_in("alice")
        self.alice.store_key(key)

    def sign_in(self, name: str) -> BffClient:
        return BffClient(self.url).login(name, _PASSWORDS[name])

    def message(self, **overrides: object) -> dict[str, object]:
        return {
            "model": self.settings.allowed_models[0],
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}],
            **overrides,
        }

    def steal_cookie(self) -> tuple[bool, str]:
        response = httpx.post(
            f"{self.url}/auth/login",
            json={"username": "alice", "password": _PASSWORDS["alice"]},
            headers={"origin": self.url},
        )
        cookie = response.headers["set-cookie"]
        flags = [flag.strip().lower() for flag in cookie.split(";")[1:]]
        if "httponly" in flags:
            return False, "document.cookie is empty: the cookie is HttpOnly"
        replay = httpx.get(f"{self.url}/auth/me", headers={"cookie": cookie.split(";")[0]})
        return replay.status_code == 200, f"script read the cookie; replayed: {replay.status_code}"

    def csrf(self, origin: str, token: str | None) -> tuple[bool, str]:
        headers = {"origin": origin, "cookie": self.alice.headers()["cookie"]}
        if token:
            headers["x-csrf-token"] = token
        mallory_key = "sk-ant-api03-" + "EVIL" * 22 + "EXAMPLEAA"
        response = httpx.put(
            f"{self.url}/keys/anthropic", json={"api_key": mallory_key}, headers=headers
        )
        if response.status_code == 204:
            self.alice.store_key(self.key)  # put things back for the next attack
            return True, "alice's key was replaced by mallory's: he can read her prompts"
        return False, _status(response)

    def replay_after_logout(self) -> tuple[bool, str]:
        victim = self.sign_in("alice")
        captured = victim.headers()
        victim.logout()
        response = httpx.get(f"{self.url}/auth/me", headers=captured)
        if response.status_code == 200:
            return True, "the old cookie still works after logout"
        return False, _status(response)

    def other_users_key(self) -> tuple[bool, str]:
        mallory = self.sign_in("mallory")
        answer = mallory.request("GET", "/keys/anthropic")
        store = bff_of(self.app).stores.keys
        assert isinstance(store, MemoryKeyStore)
        store._records["mallory"] = store.raw()["alice"]  # a database row swap
        call = mallory.request("POST", "/claude/messages", json=self.message())
        leaked = self.key.reveal() in answer.text + call.text
        detail = f"GET /keys/anthropic: {_status(answer)}; with alice's sealed row: {_status(call)}"
        return leaked or call.status_code == 200, detail

    def abusive_request(self) -> tuple[bool, str]:
        body = self.message(
            model="claude-opus-4-7",
            max_tokens=60_000,
            stream=True,
            tools=[{"name": "t", "input_schema": {"type": "object"}}],
        )
        with httpx.stream(
            "POST", f"{self.url}/claude/messages", json=body, headers=self.alice.headers()
        ) as response:
            response.read()
        if response.status_code == 200:
            return True, "forwarded: opus, 60000 max_tokens and a tool, on alice's key"
        return False, _status(response)

    def burst(self) -> tuple[bool, str]:
        fresh = self.sign_in("alice")
        codes = [
            fresh.request("POST", "/claude/messages", json=self.message()).status_code
            for _ in range(15)
        ]
        served = codes.count(200)
        return served == 15, f"{served} of 15 served, {codes.count(429)} refused with 429"


def run_attacks(
    upstream_url: str,
    victim_key: ApiKey,
    defences: Defences | None = None,
    *,
    users: UserDirectory | None = None,
) -> list[AttackResult]:
    """Start a BFF with ``defences``, play every attack, stop the BFF, return the results."""
    settings = BffSettings(
        upstream_url=upstream_url,
        defences=defences or Defences(),
        message_limit=RateLimit(per_minute=30, burst=10),
        max_tokens_cap=1024,
        # Sessions' time stands still (the same results every run); rate limits keep real time
        # (the limits library's), and the lab runs well inside their 20 s window.
        clock=FakeClock(1_900_000_000.0),
    )
    app = create_app(settings, users=users or lab_users())
    with BackgroundServer(app) as server:
        lab = _Lab(app, settings, server.url, victim_key)
        plays: dict[str, Callable[[], tuple[bool, str]]] = {
            "steal the session from injected script": lab.steal_cookie,
            "CSRF from another origin (no token)": lambda: lab.csrf(EVIL_ORIGIN, None),
            "CSRF from another origin (token leaked)": lambda: lab.csrf(
                EVIL_ORIGIN, lab.alice.csrf_token
            ),
            "CSRF from this origin, no token (e.g. a same-site form)": lambda: lab.csrf(
                server.url, None
            ),
            "replay a session after logout": lab.replay_after_logout,
            "read another user's key": lab.other_users_key,
            "disallowed model, huge max_tokens, extra tools": lab.abusive_request,
            "burst of 15 calls in a second": lab.burst,
        }
        results = [AttackResult(name, *play()) for name, play in plays.items()]
        audit = bff_of(app).audit.as_text()
        if victim_key.reveal() in audit:  # pragma: no cover - the tests prove it never is
            raise AssertionError("the key reached the audit log")
    return results


def without(*names: str) -> Defences:
    """All defences on except ``names``."""
    return dataclasses.replace(Defences(), **dict.fromkeys(names, False))
