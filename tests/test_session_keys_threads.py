"""Pattern 2 under threads: the sweeper, and many threads racing get/set/clear/expiry.

No test sleeps for a deadline: fake clocks wake the sweeper, and waits are on events with
a bounded timeout. The one real-clock test uses 50 ms timeouts.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from patterns.clock import FakeClock
from patterns.keys import demo_key
from patterns.session_keys import Expiry, SessionKeyManager, SessionKeyStore

WAIT = 5.0  # upper bound for an event that should happen at once; never reached when green


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


class Recorder:
    """An expiry callback that tests can wait on."""

    def __init__(self) -> None:
        self.expiries: list[Expiry] = []
        self.threads: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, expiry: Expiry) -> None:
        with self._changed:
            self.expiries.append(expiry)
            self.threads.append(threading.current_thread().name)
            self._changed.notify_all()

    def wait_for(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.expiries) >= count, WAIT)


def test_sweeper_wipes_an_idle_key_when_the_fake_clock_passes_the_deadline() -> None:
    clock = FakeClock()
    recorder = Recorder()
    with SessionKeyManager(100, 1000, clock=clock) as manager:
        manager.on_expire(recorder)
        manager.start_sweeper()
        manager.start_sweeper()  # idempotent
        assert manager.sweeper_running
        manager.set_key(demo_key())
        clock.advance(100)
        assert recorder.wait_for(1)
        assert recorder.threads == ["session-key-sweeper"]
        assert recorder.expiries[0].reason == "idle"
        assert len(manager._store) == 0  # wiped without anybody calling get_key
    assert not manager.sweeper_running


def test_sweeper_reschedules_after_activity_moved_the_deadline() -> None:
    clock = FakeClock()
    recorder = Recorder()
    with SessionKeyManager(100, None, clock=clock) as manager:
        manager.on_expire(recorder)
        manager.start_sweeper()
        manager.set_key(demo_key())
        for _ in range(5):  # the guide's timer would have fired (and given up) at t = 100
            clock.advance(60)
            assert manager.get_key() is not None
        clock.advance(99)
        time.sleep(0.05)  # let the woken sweeper look: nothing is due yet
        assert recorder.expiries == []
        clock.advance(1)
        assert recorder.wait_for(1)
        assert recorder.expiries[0].expired_at == 400


def test_sweeper_follows_the_absolute_deadline_and_a_store_of_many_sessions() -> None:
    clock = FakeClock()
    recorder = Recorder()
    with SessionKeyStore(100, 250, clock=clock) as store:
        store.on_expire(recorder)
        store.start_sweeper()
        for number in range(20):
            store.set_key(f"session-{number}", demo_key(str(number)))
            clock.advance(1)
        for _ in range(5):  # busy every 60 s (idle 100 s) until t = 320, past every cap
            clock.advance(60)
            for number in range(20):
                store.get_key(f"session-{number}")
        assert recorder.wait_for(20)
        assert {e.reason for e in recorder.expiries} == {"absolute"}
        assert len(store) == 0


def test_sweeper_with_the_real_monotonic_clock() -> None:
    recorder = Recorder()
    with SessionKeyManager(0.05, 1.0) as manager:
        manager.on_expire(recorder)
        manager.start_sweeper()
        started = time.monotonic()
        manager.set_key(demo_key())
        assert recorder.wait_for(1)
        elapsed = time.monotonic() - started
        assert 0.04 <= elapsed < 2.0
        assert manager.time_left() is None


def test_stop_sweeper_ends_the_thread_and_unsubscribes_from_the_clock() -> None:
    clock = FakeClock()
    manager = SessionKeyManager(clock=clock)
    manager.start_sweeper()
    manager.stop_sweeper()
    assert not manager.sweeper_running
    assert clock._listeners == {}
    manager.start_sweeper()  # a stopped sweeper can be started again
    assert _running(manager)
    manager.close()
    assert not manager.sweeper_running


def _running(manager: SessionKeyManager) -> bool:
    return manager.sweeper_running  # a call, so the type checker does not narrow the property


def _run_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(worker: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                worker()
            except BaseException as error:
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(worker)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_concurrent_get_set_clear_never_raise() -> None:
    clock = FakeClock()
    recorder = Recorder()
    keys = [demo_key(str(n)) for n in range(4)]
    with SessionKeyManager(5, 50, clock=clock) as manager:
        manager.on_expire(recorder)
        manager.start_sweeper()

        def hammer(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(2000):
                action = rng.randrange(5)
                if action == 0:
                    manager.set_key(rng.choice(keys))
                elif action == 1:
                    got = manager.get_key()
                    assert got is None or got in keys
                elif action == 2:
                    manager.clear()
                elif action == 3:
                    left = manager.time_left()
                    assert left is None or 0 <= left <= 50
                else:
                    clock.advance(rng.random())

        assert _run_threads([functools.partial(hammer, seed) for seed in range(8)]) == []
    assert {e.fingerprint for e in recorder.expiries} <= {k.fingerprint for k in keys}


def _reads_after(
    manager: SessionKeyManager, event: threading.Event, act: Callable[[], object]
) -> set[object]:
    """Three readers call get_key while ``act`` runs; return what reads that began after
    ``event`` was set got back. Bounded: each reader stops after 200 such reads."""
    start = threading.Barrier(4)
    late: list[object] = []

    def reader() -> None:
        start.wait(WAIT)
        after = 0
        for _ in range(200_000):
            was_set = event.is_set()
            got = manager.get_key()
            if was_set:
                late.append(got)
                after += 1
                if after >= 200:
                    return

    def actor() -> None:
        start.wait(WAIT)
        act()
        event.set()

    assert _run_threads([reader, reader, reader, actor]) == []
    assert late, "the readers should have outlived the action"
    return set(late)


def test_no_get_sees_the_key_after_clear_returned() -> None:
    manager = SessionKeyManager()
    for _ in range(20):
        manager.set_key(demo_key())
        assert _reads_after(manager, threading.Event(), manager.clear) == {None}


def test_no_get_sees_the_key_after_expiry_and_the_callback_fires_once() -> None:
    for _ in range(20):
        clock = FakeClock()
        recorder = Recorder()
        with SessionKeyManager(100, None, clock=clock) as manager:
            manager.on_expire(recorder)
            manager.start_sweeper()
            manager.set_key(demo_key())
            # advancing 1000 s in one step: no read can slide the deadline past it
            late = _reads_after(manager, threading.Event(), functools.partial(clock.advance, 1000))
            assert late == {None}
            assert recorder.wait_for(1)
        assert len(recorder.expiries) == 1
