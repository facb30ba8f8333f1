"""Alert hooks a team can wire to its pager, and the dispatcher that keeps them off the
request path.

A hook is any callable taking an :class:`~patterns.lifecycle.monitoring.usage.Alert`
(:class:`AlertHook`). :class:`CallableHook` names a function; :class:`WebhookHook` POSTs the
alert's JSON (who, which signal, value, baseline, time, request ids: never a key) to a chat or
pager webhook with a timeout and bounded retries.

A webhook URL usually carries its own secret (``https://hooks.example.com/T000/B000/XXXX``):
it is read from the environment by the commands, must be https unless it points at this
machine, and is never printed or logged: reprs, errors and logs show ``scheme://host`` only.

:class:`AlertDispatcher` subscribes to an :class:`~patterns.audit.AuditTrail` and runs the
hooks in one background thread fed by a bounded queue. The request that raised the alert only
enqueues it; when the queue is full the alert is dropped and counted (a pager storm must not
become an outage), and a hook that fails is counted and logged by type, never re-raised.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from patterns.audit import AuditTrail
from patterns.errors import PatternError
from patterns.kms.protocol import require_tls
from patterns.lifecycle.monitoring.usage import REQUEST_IDS_KEPT, Alert

__all__ = [
    "AlertDeliveryError",
    "AlertDispatcher",
    "AlertHook",
    "CallableHook",
    "DispatchStats",
    "WebhookHook",
    "deliver",
    "hidden_request_logs",
]

log = logging.getLogger("patterns.lifecycle.monitoring")

_quiet = threading.local()


class _HideWebhookRequests(logging.Filter):
    """httpx logs every request's full URL at INFO; while a webhook is being called in this
    thread, its line (which would carry the URL's secret) is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "active", False)


def _install_httpx_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideWebhookRequests) for f in logger.filters):
        logger.addFilter(_HideWebhookRequests())


@contextlib.contextmanager
def hidden_request_logs() -> Iterator[None]:
    """Drop httpx's request log lines in this thread while the block runs: use it around
    any call to a URL that is itself a credential (webhooks)."""
    _install_httpx_filter()
    _quiet.active = True
    try:
        yield
    finally:
        _quiet.active = False


_RETRIED_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_USERS_REMEMBERED: Final = 10_000


class AlertDeliveryError(PatternError):
    """A hook could not deliver an alert (the message names the host, never the URL)."""


@runtime_checkable
class AlertHook(Protocol):
    """Anything that takes an alert: a function, a :class:`WebhookHook`, a pager client."""

    def __call__(self, alert: Alert) -> None: ...


class CallableHook:
    """A function as a named hook (the name appears in logs and counts)."""

    def __init__(self, function: Callable[[Alert], object], name: str | None = None) -> None:
        self._function = function
        self.name = name or getattr(function, "__name__", "callable")

    def __call__(self, alert: Alert) -> None:
        self._function(alert)

    def __repr__(self) -> str:
        return f"CallableHook({self.name})"


class WebhookHook:
    """POST each alert as JSON to ``url``: ``timeout`` seconds per attempt, ``retries`` more
    attempts after a network error, a timeout, 408, 429 or a 5xx, waiting ``backoff`` seconds,
    then doubling. Redirects are not followed (they could carry the alert elsewhere)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        allow_insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        self.target = f"{parts.scheme}://{host}"
        try:
            require_tls(
                url,
                service="the alert webhook",
                allow_insecure=allow_insecure,
                exposes="the webhook's secret URL and the alerts",
            )
        except PatternError as error:
            raise type(error)(str(error)) from None  # the URL stays out of the traceback
        if not 0 <= retries <= 10 or timeout <= 0 or backoff < 0:
            raise AlertDeliveryError("need 0 <= retries <= 10, timeout > 0 and backoff >= 0")
        self._url = url
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._transport = transport
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"WebhookHook({self.target})"

    def __call__(self, alert: Alert) -> None:
        with hidden_request_logs():
            self._post(alert)

    def _post(self, alert: Alert) -> None:
        problem = ""
        wait = self._backoff
        with httpx.Client(
            transport=self._transport, timeout=self._timeout, follow_redirects=False
        ) as client:
            for attempt in range(self._retries + 1):
                if attempt:
                    self._sleep(wait)
                    wait *= 2
                try:
                    response = client.post(self._url, json=alert.payload())
                except httpx.HTTPError as error:
                    problem = type(error).__name__
                    continue
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code not in _RETRIED_STATUSES:
                    break
        raise AlertDeliveryError(
            f"the webhook at {self.target} did not take the alert ({problem}) after "
            f"{attempt + 1} attempt(s)"
        )


def _failure(hook: object, error: Exception) -> str:
    detail = str(error) if isinstance(error, PatternError) else type(error).__name__
    return f"{hook!r} failed: {detail}"


def deliver(alerts: Sequence[Alert], hooks: Sequence[AlertHook]) -> list[str]:
    """Run every hook on every alert, here and now (for a command or a replay); return the
    failures, one line each (no URL, no alert content beyond the hook's name)."""
    failures = []
    for alert in alerts:
        for hook in hooks:
            try:
                hook(alert)
            except Exception as error:
                failures.append(_failure(hook, error))
    return failures


@dataclass(frozen=True, slots=True)
class DispatchStats:
    queued: int
    delivered: int
    failed: int
    dropped: int


class AlertDispatcher:
    """Runs hooks on alerts in a background thread; see the module docstring."""

    def __init__(self, hooks: Sequence[AlertHook], *, queue_size: int = 100) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.hooks = list(hooks)
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._counts = {"queued": 0, "delivered": 0, "failed": 0, "dropped": 0}
        self._recent: OrderedDict[str, deque[str]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.failures: deque[str] = deque(maxlen=20)

    # -- intake (on the request path: never blocks, never raises) ------------------------------
    def attach(self, trail: AuditTrail) -> Callable[[], None]:
        """Follow ``trail``: remember each user's latest request ids, queue every alert."""
        return trail.subscribe(self.observe)

    def observe(self, event: dict[str, Any]) -> None:
        kind, user = event.get("event"), event.get("user")
        if not isinstance(user, str):
            return
        if kind == "message" and isinstance(event.get("request_id"), str):
            with self._lock:
                ids = self._recent.pop(user, None) or deque(maxlen=REQUEST_IDS_KEPT)
                ids.append(event["request_id"])
                self._recent[user] = ids
                if len(self._recent) > _USERS_REMEMBERED:
                    self._recent.popitem(last=False)
        elif kind == "alert":
            with self._lock:
                latest = tuple(self._recent.get(user, ()))
            self.submit(Alert.from_event(event, latest))

    def submit(self, alert: Alert) -> bool:
        """Queue ``alert``; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self._count("dropped")
            log.warning("alert queue full: an alert for %s was dropped", alert.user)
            return False
        self._count("queued")
        return True

    # -- the worker ------------------------------------------------------------------------------
    def start(self) -> AlertDispatcher:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="alert-hooks", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                for hook in self.hooks:
                    try:
                        hook(alert)
                    except Exception as error:
                        self._count("failed")
                        self.failures.append(_failure(hook, error))
                        log.warning("alert hook %r failed (%s)", hook, type(error).__name__)
                    else:
                        self._count("delivered")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert went through its hooks; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)
        self._thread = None

    @property
    def stats(self) -> DispatchStats:
        with self._lock:
            return DispatchStats(**self._counts)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def __enter__(self) -> AlertDispatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
