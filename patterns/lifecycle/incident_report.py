"""What an incident response reports: its steps and their outcomes, and its audit record.
Shared by :mod:`patterns.lifecycle.incidents` (which re-exports it) and
:mod:`patterns.lifecycle.org_incident`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from patterns.kms import AuditLog

__all__ = ["CONSOLE", "IncidentReport", "Outcome", "Step", "audit_report"]

Outcome = Literal["done", "nothing to do", "skipped", "failed"]
CONSOLE: Final = (
    "revoke the leaked key in the Anthropic Console (Settings > API keys) if not done yet"
)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a response and what came of it."""

    action: str
    outcome: Outcome
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.outcome}] {self.action}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class IncidentReport:
    """What a response did; ``changed`` is False when a rerun found everything done."""

    scenario: str
    subject: str
    steps: list[Step] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(step.outcome == "done" for step in self.steps)

    @property
    def ok(self) -> bool:
        """Contained: no step failed *or was skipped*. A store nobody handed the response
        (the BFF's key or session store, say) may still hold what leaked."""
        return not any(step.outcome in ("failed", "skipped") for step in self.steps)

    def lines(self) -> list[str]:
        head = f"{self.scenario} ({self.subject}): " + (
            "contained" if self.ok else "NOT fully contained"
        )
        return [head, *(f"  {step}" for step in self.steps), *(f"  todo: {m}" for m in self.manual)]


def audit_report(
    audit: AuditLog | None, actor: str, report: IncidentReport, context: Mapping[str, str]
) -> None:
    if audit is None:
        return
    audit.record(
        actor=actor,
        operation=f"incident.{report.scenario}",
        backend="lifecycle",
        key_id=None,
        key_version=None,
        context=dict(context),
        outcome="ok" if report.ok else "error",
        error=None
        if report.ok
        else "; ".join(str(s) for s in report.steps if s.outcome == "failed"),
    )
