"""Fault injection: make the next requests fail, stall, or break mid-stream.

Retries, timeouts and error handling are what a key-handling proxy most often gets wrong,
and the real API fails too rarely to teach with. A :class:`FaultInjector` holds a queue of
faults; each API request takes the first one that applies to it. Notebooks and tests call
it directly; ``python -m patterns serve upstream --admin`` also exposes it over HTTP.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from patterns.errors import ConfigurationError
from patterns.upstream.envelope import ERROR_TYPES

__all__ = ["Fault", "FaultInjector", "FaultKind"]

FaultKind = Literal["fail", "stall", "drop_stream", "error_stream"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued fault. ``fail`` answers ``status`` at once; ``stall`` waits ``seconds``
    before handling the request; ``drop_stream`` closes the connection after
    ``after_events`` SSE events; ``error_stream`` sends ``event: error`` there instead."""

    kind: FaultKind
    status: int = 529
    retry_after: float | None = None
    message: str | None = None
    seconds: float = 0.0
    after_events: int = 3

    def describe(self) -> str:
        if self.kind == "fail":
            wait = f", retry-after {self.retry_after:g} s" if self.retry_after is not None else ""
            return f"fail with {self.status} {ERROR_TYPES[self.status]}{wait}"
        if self.kind == "stall":
            return f"stall {self.seconds:g} s"
        if self.kind == "drop_stream":
            return f"drop the connection after {self.after_events} stream events"
        return f"send event: error ({self.status}) after {self.after_events} stream events"


class FaultInjector:
    """A thread-safe queue of faults (the server runs in another thread than the notebook)."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def _add(self, fault: Fault, count: int) -> None:
        if not 1 <= count <= 1000:
            raise ConfigurationError("count must be between 1 and 1000")
        with self._lock:
            self._queue.extend([fault] * count)

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (400 ... 529)."""
        if status not in ERROR_TYPES:
            raise ConfigurationError(f"status must be one of {sorted(ERROR_TYPES)}")
        if retry_after is not None and not 0 <= retry_after <= 3600:
            raise ConfigurationError("retry_after must be between 0 and 3600 seconds")
        self._add(Fault("fail", status=status, retry_after=retry_after, message=message), count)

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests for ``seconds`` before handling them."""
        if not 0 < seconds <= 600:
            raise ConfigurationError("seconds must be between 0 and 600")
        self._add(Fault("stall", seconds=seconds), count)

    def drop_stream_next(self, after_events: int = 3, count: int = 1) -> None:
        """Cut the next ``count`` streams after ``after_events`` events, without a goodbye."""
        self._add(Fault("drop_stream", after_events=max(0, after_events)), count)

    def error_stream_next(self, status: int = 529, after_events: int = 3, count: int = 1) -> None:
        """Send ``event: error`` with ``status``'s envelope in the next ``count`` streams."""
        if status not in ERROR_TYPES:
            raise ConfigurationError(f"status must be one of {sorted(ERROR_TYPES)}")
        self._add(Fault("error_stream", status=status, after_events=max(0, after_events)), count)

    def take(self, *, streaming: bool) -> Fault | None:
        """Remove and return the first fault that applies to this request, if any.

        Stream faults wait in the queue for a streaming request.
        """
        with self._lock:
            for index, fault in enumerate(self._queue):
                if streaming or fault.kind in {"fail", "stall"}:
                    del self._queue[index]
                    return fault
        return None

    def pending(self) -> list[str]:
        """Descriptions of the faults still queued, first first."""
        with self._lock:
            return [fault.describe() for fault in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
