"""``python -m patterns scan``: files, directory trees, notebooks, or a repository's history.

Output as text (``path:line: rule display``), JSON or SARIF 2.1.0. Exit status: 0 clean,
1 secrets found, 2 usage error; a pre-commit hook or a CI step needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from patterns.errors import PatternError
from patterns.scanning.files import Finding, scan_paths
from patterns.scanning.history import scan_git_history
from patterns.scanning.sarif import to_sarif

__all__ = ["add_scan_arguments", "main", "run_scan"]


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``python -m patterns scan``."""
    parser.add_argument(
        "paths",
        nargs="*",
        default=["."],
        help="files or directories (with --git: the repository, default .)",
    )
    parser.add_argument(
        "--git",
        action="store_true",
        help="scan every commit reachable from any branch or tag, not the working tree",
    )
    parser.add_argument(
        "--include-fakes",
        action="store_true",
        help="also report keys marked DEMO/TEST/FAKE/EXAMPLE/CANARY",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching this glob (repeatable)",
    )
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")


def _collect(args: argparse.Namespace) -> tuple[list[Finding], int, str, str | None]:
    """Findings, items read, what the items are called, and the root for SARIF URIs."""
    if args.git:
        if len(args.paths) != 1:
            raise PatternError("scan --git takes one repository path")
        history = scan_git_history(args.paths[0], excludes=args.exclude)
        return history.findings, history.commits, "commits", args.paths[0]
    findings, count = scan_paths(args.paths, excludes=args.exclude)
    root = args.paths[0] if len(args.paths) == 1 and os.path.isdir(args.paths[0]) else None
    return findings, count, "files", root


def _plural(count: int, word: str) -> str:
    return f"{count} {word if count != 1 else word.rstrip('s')}"


def run_scan(args: argparse.Namespace) -> int:
    """Run a scan from parsed arguments; exit status 1 on findings, 0 otherwise."""
    for path in args.paths:
        if not os.path.exists(path):
            print(f"scan: no such file or directory: {path}", file=sys.stderr)
            return 2
    try:
        findings, count, unit, root = _collect(args)
    except PatternError as error:
        print(f"scan: {error}", file=sys.stderr)
        return 2
    reported = [f for f in findings if args.include_fakes or not f.fake]
    allowed = len(findings) - len(reported)
    if args.format == "json":
        rows = [
            {"path": f.path, "location": f.location, "rule": f.rule_id, "secret": f.display}
            | ({"commit": f.commit} if f.commit else {})
            for f in reported
        ]
        print(json.dumps({"findings": rows, unit: count, "fakes_allowed": allowed}, indent=2))
    elif args.format == "sarif":
        print(json.dumps(to_sarif(reported, root=root), indent=2))
    else:
        for finding in reported:
            print(finding)
    note = f" ({allowed} marked fake key{'s' * (allowed != 1)} allowed)" if allowed else ""
    if reported:
        print(
            f"scan: {len(reported)} secret{'s' * (len(reported) != 1)} found in "
            f"{_plural(count, unit)}{note}. Revoke each real key in the Anthropic Console, "
            "then remove it.",
            file=sys.stderr,
        )
        return 1
    print(f"scan: no secrets found in {_plural(count, unit)}{note}.", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m patterns.scanning``: the scan command alone, importing nothing beyond the
    standard library, so a pre-commit hook starts fast and needs no server dependencies."""
    parser = argparse.ArgumentParser(
        prog="python -m patterns.scanning",
        description="Find Anthropic secrets in files, notebooks or git history. Exit status: "
        "0 clean, 1 secrets found, 2 usage error.",
    )
    add_scan_arguments(parser)
    return run_scan(parser.parse_args(argv))
