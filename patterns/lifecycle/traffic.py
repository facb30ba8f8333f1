"""Traffic during a change: keep calling while something is rotated, and count what failed.

"Rotate without downtime" is a claim about requests, so it is checked with requests: a few
threads call ``call()`` in a loop while the change runs, and the report says how many
succeeded, which failed (by error class name only: an exception's text may quote what it
was given), and when the change happened::

    report = run_traffic(ask_claude, workers=4, during=rotate_key, before_s=0.5, after_s=0.5)
    print(report.summary())          # 212 calls, 212 ok, 0 failed (100.0%); ...
    report.figure()                  # calls over time, the change shaded

For several steps (rotate, wait for calls in flight to finish, revoke the old key), use
:class:`Traffic` directly: :meth:`Traffic.change` times each step and :meth:`Traffic.settle`
waits until every call started before the last change has finished.

Threads, not asyncio: the official SDK's synchronous client is what most applications call,
and a thread per worker is the simplest faithful model. Everything is bounded: a fixed number
of workers, a hard ``timeout`` on every wait, and ``stop`` joins the threads. There is no
randomness; the number of calls depends on the machine's speed, so a notebook shows rates
and failure counts, not raw counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from patterns.errors import ConfigurationError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Call", "Change", "Traffic", "TrafficReport", "run_traffic"]

_MAX_WORKERS: Final = 64
_POLL: Final = 0.005


@dataclass(frozen=True, slots=True)
class Call:
    """One call: when it started and finished (seconds since the traffic started), which
    worker made it, and the error's class name if it failed. ``result`` is what ``call``
    returned, kept only with ``keep_results=True`` (keep it small and free of secrets)."""

    worker: int
    started: float
    finished: float
    error: str | None = None
    result: object = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Change:
    """A change made while the traffic ran, with when it started and when it returned."""

    label: str
    started: float
    finished: float


@dataclass(frozen=True, slots=True)
class TrafficReport:
    """What happened to every call while the changes ran."""

    calls: tuple[Call, ...]
    changes: tuple[Change, ...]
    duration: float
    workers: int

    @property
    def successes(self) -> int:
        return sum(call.ok for call in self.calls)

    @property
    def failures(self) -> Counter[str]:
        """Failed calls by error class name."""
        return Counter(call.error for call in self.calls if call.error is not None)

    @property
    def success_rate(self) -> float:
        """Successes over calls (1.0 when no call was made: nothing failed)."""
        return self.successes / len(self.calls) if self.calls else 1.0

    @property
    def timeline(self) -> list[tuple[float, bool]]:
        """``(finished, ok)`` for every call, in the order they finished."""
        return sorted((call.finished, call.ok) for call in self.calls)

    @property
    def change_at(self) -> float | None:
        """When the first change started (None if none was made)."""
        return self.changes[0].started if self.changes else None

    def started_after(self, change: Change) -> list[Call]:
        """Calls that started once ``change`` had returned: they must see its effect."""
        return [call for call in self.calls if call.started >= change.finished]

    def started_before(self, change: Change) -> list[Call]:
        """Calls that started before ``change`` began."""
        return [call for call in self.calls if call.started < change.started]

    def summary(self) -> str:
        """One line per fact: the totals, each failure class, each change."""
        failed = len(self.calls) - self.successes
        lines = [
            f"{len(self.calls)} calls from {self.workers} workers in {self.duration:.1f} s: "
            f"{self.successes} ok, {failed} failed ({self.success_rate:.1%} success)"
        ]
        lines += [f"  {count} x {name}" for name, count in sorted(self.failures.items())]
        for change in self.changes:
            lines.append(
                f"  change {change.label!r} at {change.started:.2f} s, "
                f"took {(change.finished - change.started) * 1000:.0f} ms"
            )
        return "\n".join(lines)

    def headline(self) -> str:
        """The part that does not depend on the machine's speed."""
        failed = len(self.calls) - self.successes
        return f"success rate {self.success_rate:.0%}, {failed} failed call(s)"

    def figure(self, *, bins: int = 40, title: str = "Calls during the change") -> Figure:
        """Calls finished per time slice, ok and failed stacked, each change shaded.

        A :class:`matplotlib.figure.Figure` made without pyplot (no global state, safe from
        any thread); Jupyter displays it, ``fig.savefig(...)`` writes it.
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 2.8), layout="constrained")
        axes = fig.add_subplot()
        end = max(self.duration, 1e-3)
        width = end / bins
        ok = [0] * bins
        bad = [0] * bins
        for finished, succeeded in self.timeline:
            slot = min(bins - 1, int(finished / width))
            (ok if succeeded else bad)[slot] += 1
        lefts = [i * width for i in range(bins)]
        axes.bar(lefts, ok, width=width, align="edge", color="#2e7d32", label="ok")
        axes.bar(lefts, bad, width=width, align="edge", bottom=ok, color="#c62828", label="failed")
        for change in self.changes:
            axes.axvspan(
                change.started,
                max(change.finished, change.started + width / 4),
                color="#1565c0",
                alpha=0.25,
            )
            axes.annotate(
                change.label,
                (change.started, 1.0),
                xycoords=("data", "axes fraction"),
                va="bottom",
                fontsize=8,
            )
        axes.set_xlim(0, end)
        axes.set_xlabel("seconds")
        axes.set_ylabel("calls finished")
        axes.set_title(f"{title}: {self.headline()}", fontsize=10)
        axes.legend(loc="lower right", fontsize=8)
        return fig

    def to_png(self, *, bins: int = 40, title: str = "Calls during the change") -> bytes:
        """The figure as PNG bytes (for ``ipywidgets.Image``)."""
        import io

        buffer = io.BytesIO()
        self.figure(bins=bins, title=title).savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


class Traffic:
    """``workers`` threads calling ``call()`` until :meth:`stop`; use as a context manager.

    ``clock`` gives the time stamps (``time.monotonic`` by default: what matters is order and
    intervals); ``timeout`` bounds every wait in real seconds; ``max_calls`` bounds the total.
    """

    def __init__(
        self,
        call: Callable[[], object],
        *,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 60.0,
        max_calls: int = 1_000_000,
        keep_results: bool = False,
    ) -> None:
        if not 1 <= workers <= _MAX_WORKERS:
            raise ConfigurationError(f"workers must be between 1 and {_MAX_WORKERS}")
        if timeout <= 0 or max_calls < 1:
            raise ConfigurationError("timeout and max_calls must be positive")
        self._call = call
        self._workers = workers
        self._clock = clock
        self._timeout = timeout
        self._max_calls = max_calls
        self._keep = keep_results
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._changes: list[Change] = []
        self._in_flight: dict[int, float] = {}  # worker -> when its current call started
        self._threads: list[threading.Thread] = []
        self._origin = 0.0
        self._report: TrafficReport | None = None

    def now(self) -> float:
        """Seconds since :meth:`start`, on ``clock``."""
        return self._clock() - self._origin

    def start(self) -> Self:
        if self._threads:
            return self
        self._origin = self._clock()
        for worker in range(self._workers):
            thread = threading.Thread(
                target=self._run, args=(worker,), name=f"traffic-{worker}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def _run(self, worker: int) -> None:
        while not self._stop.is_set():
            with self._lock:  # stamped under the lock that settle() reads
                started = self.now()
                if len(self._calls) + len(self._in_flight) >= self._max_calls:
                    return
                self._in_flight[worker] = started
            error: str | None = None
            result: object = None
            try:
                result = self._call()
            except Exception as caught:  # counted by class: the text may quote a secret
                error = type(caught).__name__
            finished = self.now()
            with self._lock:
                del self._in_flight[worker]
                self._calls.append(
                    Call(worker, started, finished, error, result if self._keep else None)
                )

    @property
    def completed(self) -> int:
        with self._lock:
            return len(self._calls)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self._timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"traffic: {what} did not happen within {self._timeout} s")
            if not any(thread.is_alive() for thread in self._threads):
                raise RuntimeError("traffic: every worker has stopped (max_calls reached?)")
            time.sleep(_POLL)

    def wait_calls(self, count: int) -> None:
        """Wait until ``count`` more calls have finished."""
        target = self.completed + count
        self._wait(lambda: self.completed >= target, f"{count} more calls")

    def wait_seconds(self, seconds: float) -> None:
        """Let the traffic run for ``seconds`` on ``clock`` (bounded by ``timeout``)."""
        until = self.now() + seconds
        self._wait(lambda: self.now() >= until, f"{seconds} s of traffic")

    @contextmanager
    def change(self, label: str) -> Iterator[None]:
        """Time the block as one change (recorded even if it raises)."""
        started = self.now()
        try:
            yield
        finally:
            with self._lock:
                self._changes.append(Change(label, started, self.now()))

    def settle(self) -> None:
        """Wait until every call that started before the last change returned has finished
        (the old key's last requests, say, before it is revoked)."""
        with self._lock:
            mark = self._changes[-1].finished if self._changes else self.now()

        def drained() -> bool:
            with self._lock:
                return all(started >= mark for started in self._in_flight.values())

        self._wait(drained, "the calls in flight to finish")

    def stop(self) -> TrafficReport:
        """Stop the workers (each finishes its current call) and report."""
        if self._report is not None:
            return self._report
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout)
        with self._lock:
            calls = tuple(sorted(self._calls, key=lambda c: (c.started, c.worker)))
            self._report = TrafficReport(calls, tuple(self._changes), self.now(), self._workers)
        return self._report

    @property
    def report(self) -> TrafficReport:
        """The report, once stopped."""
        if self._report is None:
            raise RuntimeError("stop the traffic first")
        return self._report

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_traffic(
    call: Callable[[], object],
    *,
    during: Callable[[], object],
    workers: int = 4,
    before_s: float = 0.5,
    after_s: float = 0.5,
    min_calls: int = 1,
    label: str = "change",
    clock: Callable[[], float] = time.monotonic,
    timeout: float = 60.0,
    keep_results: bool = False,
) -> TrafficReport:
    """Call ``call`` from ``workers`` threads; after ``before_s`` (and at least ``min_calls``
    calls) run ``during()`` once, keep calling for ``after_s`` (and ``min_calls`` more),
    then stop and report. An exception from ``during`` stops the traffic and propagates."""
    with Traffic(
        call, workers=workers, clock=clock, timeout=timeout, keep_results=keep_results
    ) as traffic:
        traffic.wait_seconds(before_s)
        traffic.wait_calls(min_calls)
        with traffic.change(label):
            during()
        traffic.wait_seconds(after_s)
        traffic.wait_calls(min_calls)
    return traffic.report
