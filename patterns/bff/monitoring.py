"""The audit trail and the per-user anomaly signal.

Every proxied call, sign-in, key change and refusal becomes one structured event (user, key
fingerprint, model, tokens, status, latency, request id), kept in a bounded in-memory ring
for the notebook and written as one JSON line to the ``patterns.bff.audit`` logger at INFO,
with :class:`~patterns.scanning.RedactingFilter` attached so that nothing key-shaped can
reach a log file even if a future field carried it. Ship that logger to your SIEM. The trail
itself lives in :mod:`patterns.audit` (the token proxy writes the same shape); it is
re-exported here.

The anomaly signal compares each user with their *own* past: per-minute request and token
counts, an exponentially weighted baseline of the previous minutes, and an ``alert`` event
when the current minute passes ``factor`` times the baseline and an absolute floor (so a
quiet user's first three messages are not an incident). It lives in each process; behind
several replicas, :func:`patterns.lifecycle.monitoring.replay_alerts` runs this same rule
over the shipped audit logs, and :func:`attach_alert_hooks` sends a live process's alerts to
a pager off the request path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from patterns.audit import BFF_AUDIT_LOGGER, AuditTrail

if TYPE_CHECKING:
    from collections.abc import Iterable

    from patterns.lifecycle.monitoring.hooks import AlertDispatcher, AlertHook

__all__ = ["AUDIT_LOGGER", "AnomalyDetector", "AuditTrail", "UserRates", "attach_alert_hooks"]

AUDIT_LOGGER = BFF_AUDIT_LOGGER


def attach_alert_hooks(
    target: AuditTrail | object, hooks: Iterable[AlertHook], *, queue_size: int = 100
) -> AlertDispatcher:
    """Send every ``alert`` of a live BFF (an app from ``create_app``, or its
    :class:`AuditTrail`) to ``hooks``, from a background thread with a bounded queue: a slow
    or failing pager never delays or fails a request. Close the dispatcher at shutdown."""
    from patterns.bff.context import bff_of
    from patterns.lifecycle.monitoring.hooks import AlertDispatcher

    trail = target if isinstance(target, AuditTrail) else bff_of(target).audit
    dispatcher = AlertDispatcher(list(hooks), queue_size=queue_size)
    dispatcher.attach(trail)
    return dispatcher.start()


@dataclass(slots=True)
class UserRates:
    minute: int = -1
    requests: int = 0
    tokens: int = 0
    baseline_requests: float | None = None
    baseline_tokens: float | None = None
    alerted: set[str] = field(default_factory=set)


class AnomalyDetector:
    """Flag a minute whose requests or tokens jump against the user's own baseline."""

    def __init__(
        self,
        trail: AuditTrail,
        *,
        factor: float = 5.0,
        min_requests: int = 20,
        min_tokens: int = 20_000,
        smoothing: float = 0.3,
    ) -> None:
        self._trail = trail
        self._factor = factor
        self._floors = {"requests": min_requests, "tokens": min_tokens}
        self._alpha = smoothing
        self._users: dict[str, UserRates] = {}
        self._lock = threading.Lock()

    def observe(self, username: str, now: float, tokens: int) -> list[dict[str, Any]]:
        """Count one request of ``tokens`` at ``now``; return the alerts it raised."""
        minute = int(now // 60)
        raised: list[tuple[str, int, float]] = []
        with self._lock:
            rates = self._users.setdefault(username, UserRates(minute=minute))
            if minute != rates.minute:
                self._roll_locked(rates, minute)
            rates.requests += 1
            rates.tokens += tokens
            for signal, count, base in (
                ("requests", rates.requests, rates.baseline_requests),
                ("tokens", rates.tokens, rates.baseline_tokens),
            ):
                threshold = max(self._floors[signal], self._factor * (base or 0.0))
                if count >= threshold and signal not in rates.alerted:
                    rates.alerted.add(signal)
                    raised.append((signal, count, base or 0.0))
        return [
            self._trail.record(
                "alert",
                user=username,
                signal=f"{signal} per minute",
                value=count,
                baseline=round(base, 1),
                factor=self._factor,
            )
            for signal, count, base in raised
        ]

    def _roll_locked(self, rates: UserRates, minute: int) -> None:
        """Fold the finished minute (and any silent ones since) into the baseline."""
        gap = max(1, minute - rates.minute) if rates.minute >= 0 else 1
        for index in range(min(gap, 60)):
            requests = rates.requests if index == 0 else 0
            tokens = rates.tokens if index == 0 else 0
            rates.baseline_requests = self._blend(rates.baseline_requests, requests)
            rates.baseline_tokens = self._blend(rates.baseline_tokens, tokens)
        rates.minute, rates.requests, rates.tokens = minute, 0, 0
        rates.alerted.clear()

    def _blend(self, old: float | None, value: int) -> float:
        return float(value) if old is None else (1 - self._alpha) * old + self._alpha * value
