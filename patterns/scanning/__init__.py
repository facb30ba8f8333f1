"""Find Anthropic secrets in text, files, notebooks and git history, and redact them from logs.

The detection rules follow the formats that public secret scanners use for Anthropic keys
(see ``docs/key-formats.md``). A finding is always reported by its fingerprint display
(``sk-ant-api03-…x7AA (sha256:1a2b3c4d)``), never by the key itself, so a scan report can be
pasted into a ticket.

Fake keys that carry a visible marker (DEMO, TEST, FAKE, EXAMPLE, CANARY) are allowed by the
scanner, because this project's notebooks and tests need format-valid keys; they are still
redacted from logs, because a log line is no place for anything key-shaped.

Modules: :mod:`.rules` (rules, matching, redaction), :mod:`.logfilter` (the logging filter),
:mod:`.files` (files and notebooks), :mod:`.history` (git history), :mod:`.sarif` (SARIF
2.1.0 output), :mod:`.notebooks` (cleaning notebooks before they are shared) and
:mod:`.cli` (``python -m patterns scan``). Only the standard library is used, so the
pre-commit hook runs without installing the package's server dependencies.
"""

from __future__ import annotations

from patterns.scanning.cli import add_scan_arguments, run_scan
from patterns.scanning.files import DEFAULT_EXCLUDED_DIRS, Finding, scan_paths, scan_text
from patterns.scanning.history import HistoryScan, scan_git_history
from patterns.scanning.logfilter import RedactingFilter, install_log_redaction
from patterns.scanning.rules import RULES, Match, Rule, Scanner, find_secrets, is_fake, redact
from patterns.scanning.sarif import to_sarif

__all__ = [
    "DEFAULT_EXCLUDED_DIRS",
    "RULES",
    "Finding",
    "HistoryScan",
    "Match",
    "RedactingFilter",
    "Rule",
    "Scanner",
    "add_scan_arguments",
    "find_secrets",
    "install_log_redaction",
    "is_fake",
    "redact",
    "run_scan",
    "scan_git_history",
    "scan_paths",
    "scan_text",
    "to_sarif",
]
