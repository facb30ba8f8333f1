"""The teaching pieces of notebook 06: the guide's service (its flaws reproduced), the leak
simulation, and the widget over it."""

from __future__ import annotations

import asyncio
import json

import pytest

from patterns.keys import demo_key
from patterns.scanning import find_secrets
from patterns.tokens.guide import GuideTokenService
from patterns.tokens.simulation import simulate_leak


def test_guide_service_keeps_the_raw_key_in_its_store() -> None:
    async def run() -> str:
        service = GuideTokenService()
        await service.generate_temporary_token("alice", demo_key("org").reveal())
        assert len(service.timers) == 1  # one timer per token
        service.cancel_timers()
        return json.dumps(service.tokens.data)

    dump = asyncio.run(run())
    assert [m.value for m in find_secrets(dump, include_fakes=True)] == [demo_key("org").reveal()]


def test_guide_counter_races_on_a_shared_store() -> None:
    async def run() -> int:
        service = GuideTokenService()
        token = await service.generate_temporary_token("alice", "key")
        service.cancel_timers()
        results = await asyncio.gather(*(service.validate_token(token) for _ in range(200)))
        return sum(r is not None for r in results)

    assert asyncio.run(run()) == 200  # maxUsage is 100


def test_guide_service_expires_and_exhausts_when_called_one_at_a_time() -> None:
    now = [0.0]

    async def run() -> list[bool]:
        service = GuideTokenService(clock=lambda: now[0])
        token = await service.generate_temporary_token("alice", "key")
        service.cancel_timers()
        outcomes = [await service.validate_token(token) is not None for _ in range(101)]
        fresh = await service.generate_temporary_token("bob", "key")
        service.cancel_timers()
        now[0] += 15 * 60 + 1
        outcomes.append(await service.validate_token(fresh) is not None)
        return outcomes

    outcomes = asyncio.run(run())
    assert outcomes[:100] == [True] * 100
    assert outcomes[100:] == [False, False]


def test_no_leak_lets_the_client_use_everything_until_expiry() -> None:
    report = simulate_leak(ttl=10, max_uses=100, client_rate=2, leak_at=None)
    assert report.client_calls == 20  # at minutes 0, 0.5, ..., 9.5
    assert report.client_refused == 0
    assert report.attacker_calls == 0
    assert report.ended_by == "no leak"
    assert report.tokens_per_hour == pytest.approx(6.0)


def test_a_leak_is_bounded_by_uses() -> None:
    report = simulate_leak(ttl=15, max_uses=100, client_rate=4, leak_at=5, attacker_rate=60)
    assert report.client_calls + report.attacker_calls == 100
    assert report.ended_by == "uses"
    assert 0 < report.window < 10
    assert report.attacker_times[0] == 5


def test_a_leak_is_bounded_by_expiry() -> None:
    report = simulate_leak(ttl=5, max_uses=10_000, client_rate=1, leak_at=4, attacker_rate=10)
    assert report.ended_by == "expiry"
    assert report.window == pytest.approx(1.0)
    assert report.attacker_calls == 10  # minutes 4.0 to 4.9


def test_a_leak_after_expiry_is_worthless() -> None:
    report = simulate_leak(ttl=5, max_uses=100, client_rate=1, leak_at=6)
    assert report.attacker_calls == 0
    assert report.ended_by == "no leak"


def test_simulation_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        simulate_leak(ttl=0, max_uses=1, client_rate=1, leak_at=None)


def test_leak_explorer_follows_the_simulation() -> None:
    from patterns.widgets.tokens import LeakExplorer

    explorer = LeakExplorer()
    report = explorer.set(ttl=5, max_uses=20, client_rate=4, leak_at=2, attacker_rate=60)
    expected = simulate_leak(ttl=5, max_uses=20, client_rate=4, leak_at=2, attacker_rate=60)
    assert report == expected
    assert explorer.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attacker: 11 calls" in explorer.summary.value
