"""Data-key caching: the KMS calls it saves, and the bounds that limit its risk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patterns.errors import ConfigurationError, KmsError
from patterns.kms import CachingKms, LocalKms, seal, unseal

CONTEXT = {"tenant": "acme", "user": "u-1"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def local(tmp_path: Path) -> LocalKms:
    kms = LocalKms(tmp_path / "k.json", master_key=os.urandom(32))
    kms.create_key("k")
    return kms


def test_cache_saves_kms_calls_within_its_bounds(local: LocalKms) -> None:
    cached = CachingKms(local, max_age=60, max_uses=10, clock=Clock())
    sealed = [seal(f"secret-{i}", cached, "k", CONTEXT) for i in range(100)]
    for value in sealed:
        unseal(value, cached, CONTEXT)
    # 100 seals share 10 data keys (10 uses each); 100 unseals need those 10 unwraps.
    assert cached.stats.backend_calls == 20
    assert cached.stats.cache_hits == 180
    assert cached.stats.saved_fraction == pytest.approx(0.9)


def test_entries_expire_by_age(local: LocalKms) -> None:
    clock = Clock()
    cached = CachingKms(local, max_age=5, max_uses=1000, clock=clock)
    first = cached.generate_data_key("k", CONTEXT)
    assert cached.generate_data_key("k", CONTEXT) == first
    clock.now = 5.0
    assert cached.generate_data_key("k", CONTEXT) != first


def test_cache_is_per_context(local: LocalKms) -> None:
    cached = CachingKms(local, max_age=60, max_uses=10, clock=Clock())
    a = cached.generate_data_key("k", CONTEXT)
    b = cached.generate_data_key("k", {"tenant": "acme", "user": "u-2"})
    assert a.plaintext != b.plaintext


def test_disable_through_the_cache_clears_it(local: LocalKms) -> None:
    cached = CachingKms(local, max_age=60, max_uses=10, clock=Clock())
    sealed = seal("v", cached, "k", CONTEXT)
    unseal(sealed, cached, CONTEXT)
    cached.disable_key("k")
    with pytest.raises(KmsError):
        unseal(sealed, cached, CONTEXT)


def test_disable_behind_its_back_is_seen_only_after_max_age(local: LocalKms) -> None:
    clock = Clock()
    cached = CachingKms(local, max_age=30, max_uses=100, clock=clock)
    sealed = seal("v", cached, "k", CONTEXT)
    unseal(sealed, cached, CONTEXT)
    local.disable_key("k")  # the customer disables the key in the KMS itself
    assert unseal(sealed, cached, CONTEXT) == "v"  # the documented trade-off
    clock.now = 30.0
    with pytest.raises(KmsError):
        unseal(sealed, cached, CONTEXT)


@pytest.mark.parametrize(
    "options",
    [
        {"max_age": 0, "max_uses": 1},
        {"max_age": 10, "max_uses": 0},
        {"max_age": 10, "max_uses": 2**33},
        {"max_age": 10, "max_uses": 1, "max_entries": 0},
    ],
)
def test_bounds_are_validated(local: LocalKms, options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CachingKms(local, **options)  # type: ignore[arg-type]


def test_max_entries_evicts_the_oldest(local: LocalKms) -> None:
    cached = CachingKms(local, max_age=60, max_uses=10, max_entries=2, clock=Clock())
    first = cached.generate_data_key("k", {"user": "1"})
    cached.generate_data_key("k", {"user": "2"})
    cached.generate_data_key("k", {"user": "3"})
    assert cached.generate_data_key("k", {"user": "1"}) != first
