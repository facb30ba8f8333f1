"""Read audit events from JSON-lines log files and in-memory lists, mixed.

A shipped log is whatever the log pipeline made of the ``patterns.bff.audit`` and
``patterns.tokens.audit`` loggers: one JSON object per line, perhaps behind a prefix that a
handler's format added (``INFO patterns.bff.audit {...}``). A line counts as an event when,
from its first ``{``, it is a JSON object with a string ``event``. Anything else (a partial
line, a stack trace, a line someone pasted a key into) is counted as malformed and reported
by its line number only: its content is never printed, since it may be exactly the secret
the redacting filter would have caught.

Events from several replicas are merged in time order (``at``), ties kept in reading order,
so the result does not depend on which file came first beyond that.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from patterns.audit import AuditTrail
from patterns.errors import ConfigurationError

__all__ = ["EventLog", "SourceSummary", "event_time", "parse_lines", "read_events"]

_MAX_LINE: Final = 64 * 1024  # an audit event is a few hundred bytes; longer is not one
_SHOWN_LINE_NUMBERS: Final = 10

Source = str | os.PathLike[str] | AuditTrail | Iterable[Mapping[str, Any]]
_Read = tuple[list[dict[str, Any]], "SourceSummary"]


@dataclass(slots=True)
class SourceSummary:
    """What one source gave: events, and the numbers of its malformed lines (never their
    content)."""

    name: str
    events: int = 0
    malformed_lines: list[int] = field(default_factory=list)

    @property
    def malformed(self) -> int:
        return len(self.malformed_lines)

    def describe(self) -> str:
        text = f"{self.name}: {self.events} events"
        if self.malformed_lines:
            shown = ", ".join(str(n) for n in self.malformed_lines[:_SHOWN_LINE_NUMBERS])
            more = ", ..." if self.malformed > _SHOWN_LINE_NUMBERS else ""
            text += f", {self.malformed} malformed line(s) skipped (line {shown}{more})"
        return text


@dataclass(slots=True)
class EventLog:
    """Every event read, in time order (events without a usable ``at`` last), and per-source
    counts."""

    events: list[dict[str, Any]]
    sources: list[SourceSummary]

    @property
    def malformed(self) -> int:
        return sum(s.malformed for s in self.sources)

    @property
    def untimed(self) -> int:
        return sum(1 for e in self.events if event_time(e) is None)

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") in kinds]


def event_time(event: Mapping[str, Any]) -> float | None:
    """The event's ``at`` as epoch seconds, or None when absent or not a finite number."""
    at = event.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    return float(at)


def _parse(line: str) -> dict[str, Any] | None:
    if len(line) > _MAX_LINE:
        return None
    start = line.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(line[start:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return None
    return value


def parse_lines(lines: Iterable[str], name: str = "<lines>") -> _Read:
    """Events from JSON lines; blank lines are skipped, anything else unreadable counted."""
    summary = SourceSummary(name)
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        event = _parse(line)
        if event is None:
            summary.malformed_lines.append(number)
        else:
            events.append(event)
    summary.events = len(events)
    return events, summary


def _from_mappings(items: Iterable[Mapping[str, Any]], name: str) -> _Read:
    summary = SourceSummary(name)
    events = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, Mapping) and isinstance(item.get("event"), str):
            events.append(dict(item))
        else:
            summary.malformed_lines.append(number)
    summary.events = len(events)
    return events, summary


def _read_one(source: Source, index: int) -> _Read:
    if isinstance(source, AuditTrail):
        return _from_mappings(source.events(), f"<audit trail {index}>")
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if name == "-":
            return parse_lines(sys.stdin, "<stdin>")
        path = Path(name)
        try:
            with path.open(encoding="utf-8", errors="replace") as stream:
                return parse_lines(stream, name)
        except OSError as error:
            raise ConfigurationError(f"cannot read {name}: {error.strerror or error}") from None
    return _from_mappings(source, f"<events {index}>")


def read_events(*sources: Source) -> EventLog:
    """Read every source (a path, ``-`` for stdin, an :class:`AuditTrail` or a list of event
    dicts) and merge them in time order."""
    everything: list[dict[str, Any]] = []
    summaries = []
    for index, source in enumerate(sources, start=1):
        events, summary = _read_one(source, index)
        everything.extend(events)
        summaries.append(summary)
    timed = [e for e in everything if event_time(e) is not None]
    timed.sort(key=lambda e: event_time(e) or 0.0)  # stable: ties keep reading order
    untimed = [e for e in everything if event_time(e) is None]
    return EventLog(timed + untimed, summaries)
