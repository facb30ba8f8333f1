"""Per-user usage over time, and the BFF's anomaly rule replayed over shipped logs.

Usage counts ``message`` events (one per Messages API call, from the BFF or the token
proxy, whatever its status: a refused-upstream call was still an attempt with the key) in
minute buckets. The replay feeds the same events, in time order, to the BFF's own
:class:`~patterns.bff.monitoring.AnomalyDetector`: one detector over every replica's log gives
one alert stream, where a detector per process sees only its share of a user's traffic (a
burst spread over four replicas looks like a quarter of a burst to each).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from patterns.audit import AuditTrail
from patterns.bff.monitoring import AnomalyDetector
from patterns.lifecycle.monitoring.logs import event_time

__all__ = [
    "CALL_EVENT",
    "Alert",
    "Usage",
    "UserUsage",
    "replay_alerts",
    "usage_by_minute",
    "utc_minute",
]

CALL_EVENT: Final = "message"
REQUEST_IDS_KEPT: Final = 5


def utc_minute(timestamp: float) -> str:
    """``2030-03-17 17:46 UTC``: how reports and figures name a minute."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class Alert:
    """An anomaly alert as a pager sees it: no key, no prompt, only who, what and when, and
    the request ids of the user's latest calls to look up in the logs."""

    user: str
    signal: str
    value: int
    baseline: float
    factor: float
    at: float | None
    request_ids: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: Mapping[str, Any], request_ids: Iterable[str] = ()) -> Alert:
        return cls(
            user=str(event.get("user", "?")),
            signal=str(event.get("signal", "?")),
            value=_int(event.get("value")),
            baseline=float(event.get("baseline") or 0.0),
            factor=float(event.get("factor") or 0.0),
            at=event_time(event),
            request_ids=tuple(str(r) for r in request_ids),
        )

    @property
    def time(self) -> str | None:
        if self.at is None:
            return None
        return (
            datetime.fromtimestamp(self.at, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z")
        )

    def payload(self) -> dict[str, Any]:
        """The JSON a webhook receives: ``text`` for chat tools, ``alert`` for machines."""
        return {
            "text": self.summary(),
            "alert": {
                "user": self.user,
                "signal": self.signal,
                "value": self.value,
                "baseline": self.baseline,
                "factor": self.factor,
                "at": self.at,
                "time": self.time,
                "request_ids": list(self.request_ids),
            },
        }

    def summary(self) -> str:
        when = f" at {self.time}" if self.time else ""
        return (
            f"usage anomaly: {self.user} made {self.value} {self.signal}{when}, against a "
            f"baseline of {self.baseline:g} (alert at {self.factor:g}x)"
        )


@dataclass(frozen=True, slots=True)
class UserUsage:
    """One user's calls and tokens per minute, over the log's whole span (zeros included)."""

    user: str
    requests: tuple[int, ...]
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(i + o for i, o in zip(self.input_tokens, self.output_tokens, strict=True))

    @property
    def total_requests(self) -> int:
        return sum(self.requests)

    @property
    def total_tokens(self) -> int:
        return sum(self.input_tokens) + sum(self.output_tokens)


@dataclass(frozen=True, slots=True)
class Usage:
    """Per-user series sharing one time axis: minute ``i`` starts at ``start + 60 * i``."""

    start: float
    minutes: int
    users: dict[str, UserUsage]

    def minute_of(self, timestamp: float) -> int:
        return int((timestamp - self.start) // 60)

    def busiest(self, user: str) -> tuple[float, int]:
        """The start of the user's busiest minute and its number of calls."""
        series = self.users[user].requests
        index = max(range(len(series)), key=lambda i: (series[i], -i))
        return self.start + 60 * index, series[index]


def usage_by_minute(events: Iterable[Mapping[str, Any]]) -> Usage:
    """Count calls and tokens per user per minute (UTC minute boundaries)."""
    calls = [
        (e, t)
        for e in events
        if e.get("event") == CALL_EVENT and isinstance(e.get("user"), str)
        for t in [event_time(e)]
        if t is not None
    ]
    if not calls:
        return Usage(start=0.0, minutes=0, users={})
    first = min(t for _, t in calls) // 60
    last = max(t for _, t in calls) // 60
    minutes = int(last - first) + 1
    table: dict[str, list[list[int]]] = {}
    for event, at in calls:
        rows = table.setdefault(event["user"], [[0] * minutes for _ in range(3)])
        index = int(at // 60 - first)
        rows[0][index] += 1
        rows[1][index] += _int(event.get("input_tokens"))
        rows[2][index] += _int(event.get("output_tokens"))
    users = {
        user: UserUsage(user, tuple(rows[0]), tuple(rows[1]), tuple(rows[2]))
        for user, rows in sorted(table.items())
    }
    return Usage(start=first * 60.0, minutes=minutes, users=users)


def replay_alerts(
    events: Sequence[Mapping[str, Any]],
    *,
    factor: float = 5.0,
    min_requests: int = 20,
    min_tokens: int = 20_000,
    smoothing: float = 0.3,
) -> list[Alert]:
    """Run the BFF's anomaly rule over ``events`` in time order; return its alerts.

    The thresholds default to the BFF's. Each alert carries the request ids of the user's
    latest calls (up to five), so whoever is paged can find them in the logs."""
    now = [0.0]
    trail = AuditTrail(size=10_000, clock=lambda: now[0], logger=None)
    detector = AnomalyDetector(
        trail, factor=factor, min_requests=min_requests, min_tokens=min_tokens, smoothing=smoothing
    )
    recent: dict[str, deque[str]] = {}
    alerts: list[Alert] = []
    timed = sorted(
        (e for e in events if e.get("event") == CALL_EVENT and isinstance(e.get("user"), str)),
        key=lambda e: event_time(e) or 0.0,
    )
    for event in timed:
        at = event_time(event)
        if at is None:
            continue
        user = event["user"]
        ids = recent.setdefault(user, deque(maxlen=REQUEST_IDS_KEPT))
        if isinstance(event.get("request_id"), str):
            ids.append(event["request_id"])
        now[0] = at
        tokens = _int(event.get("input_tokens")) + _int(event.get("output_tokens"))
        alerts.extend(
            Alert.from_event(raised, ids) for raised in detector.observe(user, at, tokens)
        )
    return alerts
