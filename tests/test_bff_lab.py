"""The attack lab of notebook 05: with every defence on, every attack fails; turning one
defence off makes exactly the attack it stops succeed. Also the widget over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patterns.bff import Defences
from patterns.bff.lab import ATTACKS, run_attacks, without
from patterns.keys import demo_key
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings, create_app

KEY = demo_key("lab-alice")

EXPECTED = {
    "http_only_cookie": {"steal the session from injected script"},
    "csrf_token": {"CSRF from this origin, no token (e.g. a same-site form)"},
    "origin_check": {"CSRF from another origin (token leaked)"},
    "server_side_logout": {"replay a session after logout"},
    "request_validation": {"disallowed model, huge max_tokens, extra tools"},
    "rate_limit": {"burst of 15 calls in a second"},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    settings = UpstreamSettings(api_keys=(KEY,), limits=RateLimits(10_000, 10**7, 10**7))
    with BackgroundServer(create_app(settings)) as server:
        yield server.url


def test_all_defences_on_block_every_attack(upstream: str) -> None:
    results = run_attacks(upstream, KEY, Defences())
    assert [r.name for r in results] == list(ATTACKS)
    assert not [r.name for r in results if r.succeeded]
    assert all(KEY.reveal() not in r.detail for r in results)


@pytest.mark.parametrize("defence", sorted(EXPECTED))
def test_each_defence_stops_its_attack(upstream: str, defence: str) -> None:
    results = run_attacks(upstream, KEY, without(defence))
    assert {r.name for r in results if r.succeeded} == EXPECTED[defence]


def test_no_single_switch_exposes_another_users_key(upstream: str) -> None:
    everything_off = without(*EXPECTED)
    results = {r.name: r for r in run_attacks(upstream, KEY, everything_off)}
    assert not results["read another user's key"].succeeded
    assert results["CSRF from another origin (no token)"].succeeded


def test_the_widget_reruns_the_attacks(upstream: str) -> None:
    from patterns.widgets.bff import DefenceLab

    lab = DefenceLab(upstream, KEY)
    assert "blocked" in lab.table.value
    assert "SUCCEEDED" not in lab.table.value
    results = lab.set(rate_limit=False)
    assert [r.name for r in results if r.succeeded] == ["burst of 15 calls in a second"]
    assert "SUCCEEDED" in lab.table.value
    assert lab.boxes["rate_limit"].value is False
    assert "15 of 15 served" in lab.summary()
