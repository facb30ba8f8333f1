"""Pattern 2: expiry semantics of the session key manager, pinned with a fake clock."""

from __future__ import annotations

import doctest
import logging
import math
import pickle
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import patterns.clock
import patterns.session_keys.manager
from patterns.clock import FakeClock
from patterns.errors import ConfigurationError, InvalidKeyError
from patterns.keys import ApiKey, canary_key, demo_key
from patterns.session_keys import (
    Deadlines,
    Expiry,
    GuideSessionKeyManager,
    SessionKeyManager,
    SessionKeyStore,
)

IDLE = 1800.0
ABSOLUTE = 28800.0


@pytest.fixture(autouse=True)
def _no_leaked_sweepers() -> Iterator[None]:
    yield
    leaked = [t.name for t in threading.enumerate() if t.name == "session-key-sweeper"]
    assert not leaked, f"sweeper threads left running: {leaked}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def manager(clock: FakeClock) -> Iterator[SessionKeyManager]:
    with SessionKeyManager(IDLE, ABSOLUTE, clock=clock) as held:
        yield held


@pytest.fixture
def expiries(manager: SessionKeyManager) -> list[Expiry]:
    seen: list[Expiry] = []
    manager.on_expire(seen.append)
    return seen


def _buffer(manager: SessionKeyManager) -> bytearray:
    """The manager's private buffer, to prove that it is wiped (white-box on purpose)."""
    slot = manager._store._slots["default"]
    return slot._buffer


# -- the contract -----------------------------------------------------------------------------
def test_defaults_are_owasp_low_risk_figures() -> None:
    manager = SessionKeyManager()
    assert manager.idle_timeout == 1800.0
    assert manager.absolute_timeout == 28800.0


def test_get_returns_the_key_given_as_str_or_apikey(manager: SessionKeyManager) -> None:
    assert manager.get_key() is None
    key = demo_key("alice")
    manager.set_key(key.reveal())
    assert manager.get_key() == key
    manager.set_key(key)
    got = manager.get_key()
    assert isinstance(got, ApiKey)
    assert got == key


def test_idle_deadline_slides_with_each_successful_get(
    manager: SessionKeyManager, clock: FakeClock
) -> None:
    manager.set_key(demo_key())
    for _ in range(10):  # 10 x 1799 s is far past one idle timeout, but never idle that long
        clock.advance(IDLE - 1)
        assert manager.get_key() is not None
    clock.advance(IDLE - 0.001)
    assert manager.time_left() == pytest.approx(0.001)
    clock.advance(0.001)
    assert manager.get_key() is None


def test_a_get_exactly_at_the_idle_deadline_returns_none(
    manager: SessionKeyManager, clock: FakeClock, expiries: list[Expiry]
) -> None:
    manager.set_key(demo_key())
    clock.advance(IDLE)
    assert manager.get_key() is None
    assert [(e.reason, e.expired_at) for e in expiries] == [("idle", IDLE)]


def test_absolute_deadline_caps_a_busy_session(
    manager: SessionKeyManager, clock: FakeClock, expiries: list[Expiry]
) -> None:
    manager.set_key(demo_key())
    while clock() < ABSOLUTE - 60:
        clock.advance(60)
        assert manager.get_key() is not None
        deadlines = manager.deadlines()
        assert deadlines is not None
        assert deadlines.absolute == ABSOLUTE  # gets never extend it
    clock.advance_to(ABSOLUTE)
    assert manager.get_key() is None
    assert [(e.reason, e.expired_at) for e in expiries] == [("absolute", ABSOLUTE)]


def test_time_left_is_the_first_deadline_and_is_not_activity(
    manager: SessionKeyManager, clock: FakeClock
) -> None:
    assert manager.time_left() is None
    manager.set_key(demo_key())
    assert manager.time_left() == IDLE
    clock.advance(1000)
    assert manager.time_left() == IDLE - 1000  # reading it did not slide the idle deadline
    clock.advance(800)
    assert manager.time_left() is None
    # near the absolute cap the absolute deadline is the nearer one
    manager.set_key(demo_key())
    while clock() < 1800 + ABSOLUTE - 600:
        clock.advance(600)
        manager.get_key()
    assert manager.time_left() == pytest.approx(600)
    assert manager.deadlines() == Deadlines(idle=clock() + IDLE, absolute=1800 + ABSOLUTE)


def test_absolute_none_disables_the_cap(clock: FakeClock) -> None:
    manager = SessionKeyManager(IDLE, None, clock=clock)
    manager.set_key(demo_key())
    for _ in range(100):
        clock.advance(IDLE - 1)
        assert manager.get_key() is not None
    assert manager.deadlines() == Deadlines(idle=clock() + IDLE, absolute=None)


def test_callback_fires_once_per_expiry_and_never_on_clear_or_replace(
    manager: SessionKeyManager, clock: FakeClock, expiries: list[Expiry]
) -> None:
    key = demo_key("once")
    manager.set_key(key)
    clock.advance(IDLE + 5)
    for _ in range(3):
        assert manager.get_key() is None
        assert manager.time_left() is None
    assert not manager.sweep()
    assert expiries == [Expiry("idle", key.fingerprint, IDLE, None)]

    manager.set_key(key)
    manager.set_key(demo_key("other"))  # replace: not an expiry
    manager.clear()  # logout: not an expiry
    manager.set_key(key)
    clock.advance(IDLE)
    assert manager.sweep()
    assert len(expiries) == 2


def test_set_key_on_an_expired_key_replaces_it_silently(
    manager: SessionKeyManager, clock: FakeClock, expiries: list[Expiry]
) -> None:
    manager.set_key(demo_key("old"))
    clock.advance(IDLE * 2)
    manager.set_key(demo_key("new"))
    assert manager.get_key() == demo_key("new")
    assert expiries == []


def test_a_failing_callback_is_logged_and_the_others_still_run(
    manager: SessionKeyManager, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    key = canary_key()
    seen: list[str] = []

    def broken(expiry: Expiry) -> None:
        raise RuntimeError("ui is gone")

    manager.on_expire(broken)
    manager.on_expire(lambda expiry: seen.append(expiry.reason))
    manager.set_key(key)
    clock.advance(IDLE)
    with caplog.at_level(logging.ERROR):
        assert manager.get_key() is None
    assert seen == ["idle"]
    assert "on_expire callback failed" in caplog.text
    assert key.reveal() not in caplog.text


def test_unsubscribed_callbacks_stay_silent(manager: SessionKeyManager, clock: FakeClock) -> None:
    seen: list[Expiry] = []
    unsubscribe = manager.on_expire(seen.append)
    unsubscribe()
    unsubscribe()  # idempotent
    manager.set_key(demo_key())
    clock.advance(IDLE)
    assert manager.sweep()
    assert seen == []


# -- wiping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["clear", "expire", "replace", "close"])
def test_the_buffer_is_overwritten(manager: SessionKeyManager, clock: FakeClock, how: str) -> None:
    key = canary_key()
    manager.set_key(key)
    buffer = _buffer(manager)
    assert bytes(buffer) == key.reveal().encode()
    if how == "clear":
        manager.clear()
    elif how == "expire":
        clock.advance(IDLE)
        manager.get_key()
    elif how == "replace":
        manager.set_key(demo_key())
    else:
        manager.close()
    assert buffer == bytearray(len(key.reveal()))


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("idle", "absolute"),
    [(0, 10.0), (-1, 10.0), (math.nan, 10.0), (math.inf, 10.0), (10.0, 0), (10.0, math.nan)],
)
def test_bad_timeouts_are_refused(idle: float, absolute: float) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        SessionKeyManager(idle, absolute)


def test_a_malformed_key_is_refused_and_the_held_key_kept(manager: SessionKeyManager) -> None:
    manager.set_key(demo_key())
    with pytest.raises(InvalidKeyError) as raised:
        manager.set_key("sk-ant-api03-has a space")
    assert "has a space" not in str(raised.value)
    assert manager.get_key() == demo_key()


def test_nothing_shows_or_serialises_the_key(
    manager: SessionKeyManager, clock: FakeClock, expiries: list[Expiry]
) -> None:
    key = canary_key()
    manager.set_key(key)
    texts = [repr(manager), str(manager), repr(manager.deadlines()), repr(manager.get_key())]
    with pytest.raises(TypeError) as raised:
        pickle.dumps(manager)
    texts.append(str(raised.value))
    clock.advance(IDLE)
    manager.sweep()
    texts.append(repr(expiries))
    for text in texts:
        assert key.reveal() not in text
        assert key.reveal()[20:60] not in text


# -- the multi-user store ---------------------------------------------------------------------
def test_store_sessions_expire_independently(clock: FakeClock) -> None:
    store = SessionKeyStore(100, 1000, clock=clock)
    seen: list[Expiry] = []
    store.on_expire(seen.append)
    store.set_key("s-alice", demo_key("alice"))
    clock.advance(50)
    store.set_key("s-bob", demo_key("bob"))
    clock.advance(50)
    assert store.get_key("s-alice") is None
    assert store.get_key("s-bob") == demo_key("bob")
    assert [(e.session_id, e.reason, e.expired_at) for e in seen] == [("s-alice", "idle", 100)]
    assert len(store) == 1
    assert store.clear("s-bob") is True
    assert store.clear("s-bob") is False
    assert store.get_key("nobody") is None


def test_store_refuses_new_sessions_when_full_after_sweeping(clock: FakeClock) -> None:
    store = SessionKeyStore(100, None, clock=clock, max_sessions=2)
    store.set_key("a", demo_key("a"))
    store.set_key("b", demo_key("b"))
    store.set_key("b", demo_key("b2"))  # replacing does not need room
    with pytest.raises(Exception, match="full") as raised:
        store.set_key("c", demo_key("c"))
    assert type(raised.value).__name__ == "StoreUnavailable"
    clock.advance(100)
    store.set_key("c", demo_key("c"))  # expired sessions made room
    assert store.get_key("a") is None
    assert store.get_key("c") == demo_key("c")
    assert store.clear_all() == 1


@pytest.mark.parametrize("bad", ["", None, 3])
def test_store_rejects_bad_session_ids(bad: object) -> None:
    store = SessionKeyStore()
    with pytest.raises(ValueError, match="session id"):
        store.set_key(bad, demo_key())  # type: ignore[arg-type]


# -- the guide's version, for contrast ----------------------------------------------------------
def test_guide_manager_keeps_the_key_after_activity_and_one_timer() -> None:
    clock = FakeClock()
    guide = GuideSessionKeyManager(clock)
    key = demo_key("guide").reveal()
    guide.set_api_key(key)
    clock.advance(600)
    assert guide.get_api_key() == key  # activity at 10 min
    clock.advance(1200)  # t = 30 min: the single timer fires; idle only 20 min, so it keeps
    assert clock.pending_timers() == 0  # ... and nothing re-arms it
    clock.advance(7 * 24 * 3600)
    assert guide.api_key == key  # a week later the key is still in memory
    assert guide.get_api_key() is None  # only an access notices
    assert guide.api_key is None


def test_guide_manager_has_no_absolute_lifetime_and_an_inclusive_deadline() -> None:
    clock = FakeClock()
    guide = GuideSessionKeyManager(clock)
    guide.set_api_key(demo_key().reveal())
    for _ in range(1000):
        clock.advance(1800)  # exactly at the deadline `>` still says "not expired"
        assert guide.get_api_key() is not None


def test_ours_wipes_the_same_scenario_on_time(clock: FakeClock) -> None:
    manager = SessionKeyManager(clock=clock)
    manager.set_key(demo_key("guide"))
    clock.advance(600)
    assert manager.get_key() is not None
    clock.advance(1800)
    assert manager.sweep()  # the sweeper would do this on its own: see the threaded tests
    assert manager.time_left() is None


# -- a model-based check ----------------------------------------------------------------------
_steps = st.lists(
    st.tuples(st.sampled_from(["set", "get", "clear", "time_left"]), st.integers(0, 40)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps=_steps)
def test_matches_a_simple_model(steps: list[tuple[str, int]]) -> None:
    """Against a five-line model of the two deadlines (integers: no rounding questions)."""
    clock = FakeClock()
    manager = SessionKeyManager(idle_timeout=10, absolute_timeout=25, clock=clock)
    fired: list[Expiry] = []
    manager.on_expire(fired.append)
    held: tuple[float, float] | None = None  # (idle deadline, absolute deadline)
    expected_fired = 0
    for action, wait in steps:
        clock.advance(wait)
        now = clock()
        if held is not None and now >= min(held) and action in {"get", "time_left"}:
            held, expected_fired = None, expected_fired + 1
        if action == "set":
            held = (now + 10, now + 25)
            manager.set_key(demo_key())
        elif action == "clear":
            held = None
            manager.clear()
        elif action == "get":
            assert (manager.get_key() is not None) == (held is not None)
            if held is not None:
                held = (now + 10, held[1])
        else:
            expected = None if held is None else min(held) - now
            assert manager.time_left() == expected
        assert len(fired) == expected_fired


_store_steps = st.lists(
    st.tuples(
        st.sampled_from(["set", "get", "clear", "time_left", "sweep"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 30),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps=_store_steps)
def test_store_and_its_sweep_agenda_match_a_simple_model(steps: list[tuple[str, str, int]]) -> None:
    """Several sessions, with sweeps: exercises the sweeper's lazy agenda (heap) logic."""
    clock = FakeClock()
    store = SessionKeyStore(idle_timeout=10, absolute_timeout=25, clock=clock)
    fired: list[Expiry] = []
    store.on_expire(fired.append)
    held: dict[str, tuple[float, float]] = {}
    expected: list[tuple[str, float]] = []
    for action, sid, wait in steps:
        clock.advance(wait)
        now = clock()
        if action == "sweep":
            due = sorted((min(d), s) for s, d in held.items() if now >= min(d))
            assert store.sweep() == len(due)
            for _, gone in due:
                expected.append((gone, min(held.pop(gone))))
        elif action in {"get", "time_left"} and sid in held and now >= min(held[sid]):
            expected.append((sid, min(held.pop(sid))))
        if action == "set":
            held[sid] = (now + 10, now + 25)
            store.set_key(sid, demo_key(sid))
        elif action == "clear":
            assert store.clear(sid) == (sid in held)
            held.pop(sid, None)
        elif action == "get":
            assert (store.get_key(sid) is not None) == (sid in held)
            if sid in held:
                held[sid] = (now + 10, held[sid][1])
        elif action == "time_left":
            left = store.time_left(sid)
            assert left == (min(held[sid]) - now if sid in held else None)
        assert sorted((e.session_id, e.expired_at) for e in fired) == sorted(expected)
    assert len(store._agenda) <= 2 * len(store._slots) + 65


def test_the_sweep_agenda_stays_bounded_under_churn(clock: FakeClock) -> None:
    store = SessionKeyStore(100, 1000, clock=clock)
    for number in range(5000):
        store.set_key("same-session", demo_key(str(number % 7)))
        if number % 3:
            store.clear("other")
        else:
            store.set_key("other", demo_key("o"))
        live = [sid for _, _, sid, slot in store._agenda if store._slots.get(sid) is slot]
        assert sorted(live) == sorted(store._slots)  # exactly one entry per live key
        assert len(store._agenda) <= 2 * 2 + 65  # never more than 2 sessions here


def test_docstring_examples_run() -> None:
    for module in (patterns.session_keys.manager, patterns.clock):
        assert doctest.testmod(module).failed == 0
