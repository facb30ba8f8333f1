"""Structured audit events, shared by the BFF and the token proxy.

Every event is a flat JSON object: ``event`` (what happened), ``at`` (epoch seconds, from the
server's injectable clock) and fields such as ``user``, ``key_fingerprint``, ``model``,
``input_tokens``, ``output_tokens``, ``status``, ``latency_ms`` and ``request_id``. Both
servers use the same names where they record the same thing, so one reader
(:mod:`patterns.lifecycle.monitoring`) handles both logs, mixed.

An :class:`AuditTrail` keeps the latest events in a bounded ring (for notebooks and tests)
and writes each as one JSON line to a logger at INFO, with
:class:`~patterns.scanning.RedactingFilter` attached, so nothing key-shaped reaches a log file
even if a future field carried it. Ship those loggers (``patterns.bff.audit``,
``patterns.tokens.audit``) to your SIEM. Listeners (:meth:`AuditTrail.subscribe`) run inline,
on the request path: anything slow (a pager webhook) belongs behind
:class:`patterns.lifecycle.monitoring.AlertDispatcher`, which queues and returns at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from patterns.errors import ConfigurationError
from patterns.scanning import RedactingFilter, redact

__all__ = [
    "BFF_AUDIT_LOGGER",
    "TOKENS_AUDIT_LOGGER",
    "AuditFile",
    "AuditListener",
    "AuditTrail",
    "add_audit_log_argument",
    "attach_audit_log",
    "audit_logger",
]

BFF_AUDIT_LOGGER: Final = "patterns.bff.audit"
TOKENS_AUDIT_LOGGER: Final = "patterns.tokens.audit"

AuditListener = Callable[[dict[str, Any]], None]

_log = logging.getLogger("patterns.audit")


def audit_logger(name: str) -> logging.Logger:
    """The logger ``name`` with a :class:`RedactingFilter` attached (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


class AuditFile:
    """An :class:`AuditTrail` listener that appends each event to ``path`` as one JSON line
    and nothing else: the input of ``python -m patterns monitor``, independent of how the
    server's logging is configured (uvicorn's own configuration resets the handlers of the
    package's loggers at start-up).

    The file is created readable by its owner only (it names users and key fingerprints);
    each line goes through :func:`~patterns.scanning.redact`, like the log lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._stream = os.fdopen(descriptor, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        line = redact(json.dumps(event, separators=(",", ":"), sort_keys=True))
        with self._lock:
            if not self._stream.closed:
                self._stream.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._stream.close()


class AuditTrail:
    """A bounded list of audit events plus the JSON-lines logger.

    ``logger`` is where each event is written (the BFF's by default; None writes nowhere,
    for a replay that must not look like live traffic in the log).
    """

    def __init__(
        self,
        size: int = 1000,
        clock: Callable[[], float] | None = None,
        *,
        logger: str | None = BFF_AUDIT_LOGGER,
    ) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._clock = clock
        self._listeners: list[AuditListener] = []
        self._log = audit_logger(logger) if logger is not None else None

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"event": event}
        if self._clock is not None:
            entry["at"] = round(self._clock(), 3)
        entry.update({k: v for k, v in fields.items() if v is not None})
        with self._lock:
            self._events.append(entry)
            listeners = list(self._listeners)
        if self._log is not None and self._log.isEnabledFor(logging.INFO):
            self._log.info("%s", json.dumps(entry, separators=(",", ":"), sort_keys=True))
        for listener in listeners:
            try:
                listener(entry)
            except Exception as error:  # a listener must never fail the request it observes
                _log.error(
                    "audit listener failed (%s); the event was recorded", type(error).__name__
                )
        return entry

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._events if kind is None or e["event"] == kind]

    def subscribe(self, listener: AuditListener) -> Callable[[], None]:
        """Call ``listener(event)`` after each event is recorded; returns an unsubscribe.

        Listeners run inline in the request that recorded the event: keep them quick. An
        exception from one is logged by its type and swallowed, never passed to the request."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def as_text(self) -> str:
        """Every event as a JSON line: what a log file of this server would hold."""
        return "\n".join(json.dumps(e, sort_keys=True) for e in self.events())


# -- ``--audit-log PATH``, shared by ``serve bff`` and ``serve token-proxy`` -----------------


def add_audit_log_argument(parser: argparse.ArgumentParser) -> None:
    """Declare ``--audit-log PATH``: one definition, so both servers' CLIs say the same."""
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="append the audit events (JSON lines, owner-readable) to this file: the input "
        "of python -m patterns monitor",
    )


def attach_audit_log(trail: AuditTrail, path: str | None, banner: list[str]) -> AuditFile | None:
    """Subscribe an :class:`AuditFile` at ``path`` to ``trail`` and say so in ``banner``.

    None without a path. A file that cannot be opened is a :class:`ConfigurationError` before
    the server starts (the CLI exits 2), not a server that silently writes no audit trail.
    The caller closes the returned file when the server stops."""
    if not path:
        return None
    try:
        audit_file = AuditFile(path)
    except OSError as error:
        raise ConfigurationError(f"cannot write {path}: {error.strerror}") from None
    trail.subscribe(audit_file)
    banner.append(f"audit events: appended to {path}")
    return audit_file
