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
    """One user's calls and tokens per minute over the log's span of ``minutes``.

    Only the minutes with calls are stored (a month of logs is 43,200 minutes per user);
    :attr:`requests`, :attr:`input_tokens`, :attr:`output_tokens` and :attr:`tokens` give the
    full series, zeros included, when a figure needs it."""

    user: str
    minutes: int
    buckets: dict[int, tuple[int, int, int]]  # minute -> (calls, input tokens, output tokens)

    def _series(self, column: int) -> tuple[int, ...]:
        dense = [0] * self.minutes
        for minute, row in self.buckets.items():
            dense[minute] = row[column]
        return tuple(dense)

    @property
    def requests(self) -> tuple[int, ...]:
        return self._series(0)

    @property
    def input_tokens(self) -> tuple[int, ...]:
        return self._series(1)

    @property
    def output_tokens(self) -> tuple[int, ...]:
        return self._series(2)

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(i + o for i, o in zip(self.input_tokens, self.output_tokens, strict=True))

    @property
    def total_requests(self) -> int:
        return sum(row[0] for row in self.buckets.values())

    @property
    def total_tokens(self) -> int:
        return sum(row[1] + row[2] for row in self.buckets.values())

    def busiest(self) -> tuple[int, int]:
        """The user's busiest minute (the first of equals) and its number of calls."""
        minute, row = max(self.buckets.items(), key=lambda item: (item[1][0], -item[0]))
        return minute, row[0]


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
        minute, calls = self.users[user].busiest()
        return self.start + 60 * minute, calls


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
    minutes = int(max(t for _, t in calls) // 60 - first) + 1
    table: dict[str, dict[int, list[int]]] = {}
    for event, at in calls:
        row = table.setdefault(event["user"], {}).setdefault(int(at // 60 - first), [0, 0, 0])
        row[0] += 1
        row[1] += _int(event.get("input_tokens"))
        row[2] += _int(event.get("output_tokens"))
    users = {
        user: UserUsage(user, minutes, {m: (r[0], r[1], r[2]) for m, r in sorted(rows.items())})
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
