"""The traffic-during-a-change helper: counts, failure classes (names only), the moments of
each change, settling calls in flight, bounds, the summary and the figure."""

from __future__ import annotations

import threading
import time

import pytest
from matplotlib.figure import Figure

from patterns.errors import ConfigurationError
from patterns.keys import canary_key
from patterns.lifecycle.traffic import Traffic, run_traffic


class Flaky:
    """Fails while ``broken`` is set, with an exception whose text holds a secret."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        self.secret = canary_key()

    def __call__(self) -> str:
        time.sleep(0.002)
        if self.broken.is_set():
            raise PermissionError(f"refused {self.secret.reveal()}")
        return "ok"


def test_a_change_that_breaks_nothing_reports_100_percent() -> None:
    calls = Flaky()
    changed: list[float] = []
    report = run_traffic(
        calls, workers=3, during=lambda: changed.append(1.0), before_s=0.1, after_s=0.1
    )
    assert report.failures == {}
    assert report.success_rate == 1.0
    assert report.successes == len(report.calls) >= 2
    assert changed == [1.0]
    assert report.change_at is not None
    assert 0.1 <= report.change_at < report.duration
    change = report.changes[0]
    assert report.started_before(change)
    assert report.started_after(change)
    assert report.headline() == "success rate 100%, 0 failed call(s)"
    assert "0 failed (100.0% success)" in report.summary()
    assert [t for t, _ in report.timeline] == sorted(t for t, _ in report.timeline)
    assert {call.worker for call in report.calls} == {0, 1, 2}


def test_failures_are_counted_by_class_name_only() -> None:
    calls = Flaky()
    with Traffic(calls, workers=2) as traffic:
        traffic.wait_calls(5)
        with traffic.change("break"):
            calls.broken.set()
        traffic.wait_calls(5)
        with traffic.change("repair"):
            calls.broken.clear()
        traffic.settle()
        traffic.wait_calls(5)
    report = traffic.report
    assert report.failures["PermissionError"] >= 3
    assert 0 < report.success_rate < 1
    assert [c.label for c in report.changes] == ["break", "repair"]
    repaired = report.changes[1]
    assert all(call.ok for call in report.started_after(repaired))
    text = report.summary() + repr(report)
    assert "x PermissionError" in text
    assert calls.secret.reveal() not in text
    assert all(call.result is None for call in report.calls)  # not kept unless asked


def test_settle_waits_for_calls_started_before_the_change() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow() -> None:
        entered.release()
        release.wait(5)

    with Traffic(slow, workers=2, timeout=5) as traffic:
        assert entered.acquire(timeout=5)
        assert entered.acquire(timeout=5)  # both workers are inside a call
        with traffic.change("swap"):
            pass
        waiter = threading.Thread(target=traffic.settle)
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive()  # both workers are still in calls started before the swap
        release.set()
        waiter.join(5)
        assert not waiter.is_alive()
    assert traffic.report.successes >= 2


def test_results_are_kept_on_request_and_the_figure_renders() -> None:
    counter = iter(range(10**6))
    lock = threading.Lock()

    def numbered() -> int:
        with lock:
            return next(counter)

    report = run_traffic(
        numbered, workers=2, during=lambda: None, before_s=0.02, after_s=0.02, keep_results=True
    )
    assert sorted(int(str(call.result)) for call in report.calls) == list(range(len(report.calls)))
    fig = report.figure(bins=10)
    assert isinstance(fig, Figure)
    assert "success rate 100%" in fig.axes[0].get_title()
    assert report.to_png().startswith(b"\x89PNG")


def test_bounds() -> None:
    with pytest.raises(ConfigurationError):
        Traffic(lambda: None, workers=0)
    with pytest.raises(ConfigurationError):
        Traffic(lambda: None, workers=65)
    traffic = Traffic(lambda: time.sleep(0.001), workers=2, max_calls=10, timeout=2)
    with traffic, pytest.raises(RuntimeError, match="max_calls"):
        traffic.wait_calls(50)
    assert len(traffic.report.calls) == 10
    with (
        pytest.raises(TimeoutError, match="within"),
        Traffic(lambda: time.sleep(0.2), timeout=0.1) as t,
    ):
        t.wait_calls(100)
    with pytest.raises(RuntimeError, match="stop the traffic first"):
        Traffic(lambda: None).report  # noqa: B018


def test_an_error_in_the_change_stops_the_traffic_and_propagates() -> None:
    def broken() -> None:
        raise ValueError("the change failed")

    before = threading.active_count()
    with pytest.raises(ValueError, match="the change failed"):
        run_traffic(lambda: None, during=broken, before_s=0.01, after_s=0.01)
    time.sleep(0.05)
    assert threading.active_count() <= before
