"""Scan results as SARIF 2.1.0, the format code-hosting platforms read (GitHub code scanning,
GitLab, Azure DevOps), so findings show up on the pull request that added them.

Each result carries the rule, the file and line (``%SRCROOT%``-relative), the commit for a
history scan, and a partial fingerprint (``secretHash/v1``: the key's ``sha256:`` prefix)
that lets a platform track one key across runs. The key itself is never written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from patterns import __version__
from patterns.scanning.files import Finding
from patterns.scanning.rules import RULES, Rule

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif"]

SARIF_VERSION: Final = "2.1.0"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_TOOL: Final = "anthropic-key-patterns scan"
_HELP: Final = (
    "Revoke the key in the Anthropic Console (Settings > API keys) first: deleting it from the "
    "file, or rewriting history, does not reach the copies already cloned. Then remove it and "
    "load keys from the environment or a secrets manager."
)


def _uri(path: str, root: Path | None) -> str:
    """A forward-slash URI relative to ``root`` when the file is inside it."""
    candidate = Path(path)
    if root is not None and candidate.is_absolute():
        try:
            candidate = candidate.relative_to(root)
        except ValueError:
            return candidate.as_uri()
    text = candidate.as_posix()
    return text[2:] if text.startswith("./") else text


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.title() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.description},
        "fullDescription": {"text": f"{rule.description} found in a file or commit."},
        "help": {"text": _HELP},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret"]},
    }


def _result(finding: Finding, index: int, root: Path | None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "artifactLocation": {"uri": _uri(finding.path, root), "uriBaseId": "%SRCROOT%"}
    }
    where = f"line {finding.location}"
    if finding.line is not None:
        location["region"] = {"startLine": finding.line}
    else:
        where = f"notebook field {finding.location}"
    text = f"{finding.display} at {where}"
    if finding.commit:
        text += f", added by commit {finding.commit[:12]}"
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": "note" if finding.fake else "error",
        "message": {"text": f"{text}. Revoke this key, then remove it."},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"secretHash/v1": finding.secret_hash},
    }
    if finding.commit:
        result["properties"] = {"commit": finding.commit}
    return result


def to_sarif(
    findings: Sequence[Finding],
    *,
    root: str | os.PathLike[str] | None = None,
    rules: Sequence[Rule] = RULES,
) -> dict[str, Any]:
    """Return a SARIF 2.1.0 log (a dict ready for ``json.dumps``) with one run.

    ``root`` is the directory paths are made relative to (the scanned repository); it is
    recorded as ``originalUriBaseIds["%SRCROOT%"]``.
    """
    base = Path(root).resolve() if root is not None else None
    index = {rule.id: i for i, rule in enumerate(rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": _TOOL,
                "version": __version__,
                "informationUri": "https://example.invalid/anthropic-key-patterns",
                "rules": [_rule(rule) for rule in rules],
            }
        },
        "results": [_result(f, index[f.rule_id], base) for f in findings],
        "columnKind": "unicodeCodePoints",
    }
    if base is not None:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": base.as_uri() + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
