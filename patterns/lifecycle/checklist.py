"""The key-lifecycle checklist as data, and the Markdown report a team keeps from it.

The guide ends with a "User Education Checklist" in three phases (before implementation,
during usage, after incidents) whose items name goals ("Create incident response
procedures") but no way to meet or verify them. Each item here keeps the guide's phase and
intent where it had one, adds what this suite teaches, and says *how* to meet it: the
command, module or notebook that does the work. Notebook 07's widget ticks items; the report
is what a team pastes into a ticket or a wiki page.

The report holds nothing secret by construction (fixed texts and item ids); the free-text
fields a reader may add (team, notes) are redacted all the same, because a pasted key is the
accident this whole suite is about.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from patterns.errors import ConfigurationError
from patterns.scanning import redact

__all__ = [
    "ITEMS",
    "PHASES",
    "ChecklistItem",
    "Phase",
    "find_item",
    "progress",
    "render_markdown",
    "write_markdown",
]

Phase = Literal["before launch", "during use", "after an incident"]
PHASES: Final[tuple[Phase, ...]] = ("before launch", "during use", "after an incident")


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One thing to have done, how to do it, and whether the guide asked for it."""

    id: str
    phase: Phase
    text: str
    how: str
    from_guide: bool = False


def _item(id: str, phase: Phase, text: str, how: str, *, guide: bool = False) -> ChecklistItem:
    return ChecklistItem(id, phase, text, how, from_guide=guide)


_B: Final[Phase] = "before launch"
_D: Final[Phase] = "during use"
_A: Final[Phase] = "after an incident"

#: The items, in the order the report lists them.
ITEMS: Final[tuple[ChecklistItem, ...]] = (
    _item(
        "security-model",
        _B,
        "The key-handling pattern fits the app's risk, and users are told who can read their key",
        "notebook 00's advisor (`patterns.advisor`); the warning panel of notebook 01",
        guide=True,
    ),
    _item(
        "keys-from-environment",
        _B,
        "Keys come from the environment or a secrets manager: never from source, URLs or widgets",
        "`patterns.keys.key_from_environment`, `prompt_for_key` (getpass), `ApiKey`",
        guide=True,
    ),
    _item(
        "separate-keys",
        _B,
        "Each environment (dev, staging, production) and each application has its own key",
        "one Console key per environment; the key inventory of `python -m patterns key-age`",
        guide=True,
    ),
    _item(
        "scanning",
        _B,
        "A pre-commit hook and a CI job scan every commit, history included, for keys",
        "`anthropic-key-scan` hook; `python -m patterns scan --git --format sarif`",
        guide=True,
    ),
    _item(
        "redaction",
        _B,
        "Logs, tracebacks and shared notebooks are redacted before they leave the process",
        "`install_log_redaction()`; `python -m patterns clean-notebook`",
    ),
    _item(
        "runbook",
        _B,
        "An incident runbook names who runs which response command, and has been drilled",
        "`python -m patterns incident ...`; the drill in notebook 07",
        guide=True,
    ),
    _item(
        "key-age",
        _D,
        "Every key has an owner, a creation date and a maximum age; a reminder fires before it",
        "`python -m patterns key-age --max-age-days 90 --warn-days 14` in a daily job",
        guide=True,
    ),
    _item(
        "routine-rotation",
        _D,
        "Rotation is routine and causes no failed request: org-key rollover with grace, "
        "user key replacement, KMS rotate then rewrap",
        "`rotate-org-key --grace 900`; `PUT /keys/anthropic` in the BFF; `rotate-kms`",
        guide=True,
    ),
    _item(
        "monitoring",
        _D,
        "Per-user usage is watched, and an anomaly alerts a person (pager or chat)",
        "the BFF's audit trail and `AnomalyDetector`; an alert hook to your pager",
        guide=True,
    ),
    _item(
        "usage-visible",
        _D,
        "Users see their own usage, and a budget caps what one key can spend",
        "the BFF's `/usage` and `token_budget` (notebook 05)",
        guide=True,
    ),
    _item(
        "audit-log",
        _D,
        "Key changes, token mints and incident responses go to a tamper-evident audit log",
        "`patterns.kms.AuditLog`; `verify_audit_log` in a scheduled job",
    ),
    _item(
        "access-review",
        _D,
        "Who can read keys (KMS policies, proxy hosts, admins) is reviewed on a schedule",
        "KMS key policies; the issuer secret and key files (mode 0600) of the token proxy",
        guide=True,
    ),
    _item(
        "revoke-in-console",
        _A,
        "The leaked key is revoked in the Anthropic Console first: no code here can do it",
        "Console > Settings > API keys; every incident report ends with this step",
        guide=True,
    ),
    _item(
        "contain",
        _A,
        "The matching response runs until it reports contained, and is safe to run again",
        "`incident user-key-leaked | org-key-leaked | kms-key-compromised`",
        guide=True,
    ),
    _item(
        "find-copies",
        _A,
        "Every place the key reached is found: git history, logs, notebooks, backups",
        "`scan --git` on every clone; `scan` over log and notebook folders",
        guide=True,
    ),
    _item(
        "notify-users",
        _A,
        "Affected users are told which key (by fingerprint, never the key) and what to do",
        "`ApiKey.fingerprint` / `describe_secret` in the message",
        guide=True,
    ),
    _item(
        "review-usage",
        _A,
        "Usage between the leak and the revocation is reviewed for cost and data exposure",
        "the audit trail by user and key fingerprint; the Console's usage page",
        guide=True,
    ),
    _item(
        "post-incident-review",
        _A,
        "A blameless review adds the check that would have caught it (hook, alert, limit)",
        "a new rule, alert threshold or budget, tested like the rest",
        guide=True,
    ),
)

_BY_ID: Final = {item.id: item for item in ITEMS}


def find_item(item_id: str) -> ChecklistItem:
    """The item with this id; :class:`ConfigurationError` names the valid ids otherwise."""
    try:
        return _BY_ID[item_id]
    except KeyError:
        raise ConfigurationError(
            f"no checklist item {redact(item_id)!r}; known items: {', '.join(_BY_ID)}"
        ) from None


def _ticked_set(ticked: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(ticked)
    for item_id in chosen:
        find_item(item_id)  # an unknown id is a typo: say so rather than drop it silently
    return chosen


def progress(ticked: Iterable[str]) -> dict[Phase, tuple[int, int]]:
    """(done, total) per phase."""
    chosen = _ticked_set(ticked)
    counts: dict[Phase, tuple[int, int]] = {}
    for phase in PHASES:
        items = [item for item in ITEMS if item.phase == phase]
        counts[phase] = (sum(item.id in chosen for item in items), len(items))
    return counts


def _one_line(text: str) -> str:
    return " ".join(redact(text).split())


def render_markdown(
    ticked: Collection[str] | Iterable[str],
    *,
    team: str = "",
    date: str = "",
    notes: str = "",
) -> str:
    """The checklist as a Markdown report: ticked items as ``- [x]``, the rest as ``- [ ]``,
    each with how to do it, a count per phase, and what is still open first.

    Deterministic (no clock inside: pass ``date`` if the report should carry one), so a
    team can diff two reports. Free text (``team``, ``date``, ``notes``) is redacted.
    """
    chosen = _ticked_set(ticked)
    counts = progress(chosen)
    done = sum(d for d, _ in counts.values())
    title = "# Key lifecycle checklist" + (f": {_one_line(team)}" if team.strip() else "")
    lines = [title, ""]
    if date.strip():
        lines += [f"Date: {_one_line(date)}", ""]
    lines.append(f"**{done} of {len(ITEMS)} done.** " + _open_summary(chosen))
    lines.append("")
    for phase in PHASES:
        phase_done, total = counts[phase]
        lines += [f"## {phase.capitalize()} ({phase_done}/{total})", ""]
        for item in ITEMS:
            if item.phase == phase:
                mark = "x" if item.id in chosen else " "
                source = " *(guide)*" if item.from_guide else ""
                lines.append(f"- [{mark}] {item.text}{source}  ")
                lines.append(f"  how: {item.how}")
        lines.append("")
    if notes.strip():
        lines += ["## Notes", "", redact(notes.strip()), ""]
    lines.append(
        "*(guide)*: the guide's checklist asked for it; every item says how to meet it with "
        "anthropic-key-patterns (`docs/lifecycle.md`)."
    )
    return "\n".join(lines) + "\n"


def _open_summary(chosen: frozenset[str]) -> str:
    urgent = [i for i in ITEMS if i.phase == "after an incident" and i.id not in chosen]
    before = [i for i in ITEMS if i.phase == "before launch" and i.id not in chosen]
    if not before and not urgent:
        return "Nothing open before launch or for an incident."
    parts = []
    if before:
        parts.append(f"{len(before)} open before launch")
    if urgent:
        parts.append(f"{len(urgent)} of the incident steps not yet prepared")
    return "; ".join(parts) + "."


def write_markdown(
    path: str | os.PathLike[str],
    ticked: Iterable[str],
    *,
    team: str = "",
    date: str = "",
    notes: str = "",
) -> Path:
    """Write :func:`render_markdown`'s report to ``path`` atomically (temporary file, then
    rename, so a reader never sees half a report); returns the path."""
    target = Path(path)
    text = render_markdown(list(ticked), team=team, date=date, notes=notes)
    if target.is_dir():
        raise ConfigurationError(f"{target} is a folder: give a file name such as checklist.md")
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write {target.name}: {target.parent} does not exist")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
