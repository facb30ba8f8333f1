"""What every check returns: a status and, when it is not OK, the command that fixes it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Finding", "Status"]


class Status(enum.Enum):
    """How a finding counts: only PROBLEM makes the environment not ready."""

    OK = "✅"
    PROBLEM = "❌"
    WARNING = "⚠️"
    ABSENT = "⚪"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report, and the command that fixes it when it is not OK."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.value} {self.name}: {self.detail}"
        return f"{text}\n   fix: {self.fix}" if self.fix else text
