"""Scan files, directory trees and notebooks; findings describe a secret without holding it."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from patterns.keys import fingerprint
from patterns.scanning.rules import Match, default_scanner, is_fake

__all__ = ["DEFAULT_EXCLUDED_DIRS", "MAX_FILE_BYTES", "Finding", "scan_paths", "scan_text"]

DEFAULT_EXCLUDED_DIRS: Final = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
    }
)
MAX_FILE_BYTES: Final = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret found in a file (or in a file of a past commit), described without the secret.

    ``secret_hash`` is the fingerprint alone (``sha256:1a2b3c4d``): it lets a report group
    the places one key appears in, and lets a history scan tell a key a commit *added* from
    one it only kept, without the finding ever holding the key.
    """

    path: str
    location: str  # a line number, or a place inside a notebook's JSON
    rule_id: str
    display: str  # prefix, last 4 characters and fingerprint; never the key
    fake: bool
    commit: str | None = None  # the commit that introduced it (history scans only)
    secret_hash: str = ""

    @property
    def line(self) -> int | None:
        """The line number, when the location is one (not a JSON path inside a notebook)."""
        return int(self.location) if self.location.isdigit() else None

    def __str__(self) -> str:
        where = f"{self.commit[:12]}:{self.path}" if self.commit else self.path
        return f"{where}:{self.location}: {self.rule_id} {self.display}"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _finding(path: str, location: str, match: Match, commit: str | None) -> Finding:
    value = match.value
    return Finding(
        path, location, match.rule.id, match.display, is_fake(value), commit, fingerprint(value)
    )


def _walk_json(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_json(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _walk_json(str(name), f"{where}.<key>")
            yield from _walk_json(item, f"{where}.{name}" if where else str(name))


def _scan_plain(path: str, text: str, commit: str | None) -> list[Finding]:
    return [
        _finding(path, str(_line_of(text, m.start)), m, commit)
        for m in default_scanner.matches(text)
    ]


def _scan_notebook(path: str, text: str, commit: str | None) -> list[Finding]:
    """Scan a notebook's raw JSON (for line numbers) and then every decoded string in it
    (code, outputs, metadata, widget state), so that JSON escapes cannot hide a key."""
    findings = _scan_plain(path, text, commit)
    try:
        document = json.loads(text)
    except ValueError:
        return findings
    for where, string in _walk_json(document, ""):
        for m in default_scanner.matches(string):
            if m.value not in text:  # only what the raw scan could not see
                findings.append(_finding(path, where, m, commit))
    return findings


def scan_text(path: str, text: str, *, commit: str | None = None) -> list[Finding]:
    """Scan one file's text; ``path`` decides whether it is read as a notebook."""
    scan = _scan_notebook if path.endswith(".ipynb") else _scan_plain
    return scan(path, text, commit)


def _iter_files(paths: Iterable[str | os.PathLike[str]], excludes: Sequence[str]) -> Iterator[Path]:
    def excluded(path: Path) -> bool:
        return any(fnmatch.fnmatch(str(path), pattern) for pattern in excludes)

    for root in map(Path, paths):
        if root.is_file():
            if not excluded(root):
                yield root
            continue
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if d not in DEFAULT_EXCLUDED_DIRS)
            for name in sorted(files):
                path = Path(directory, name)
                if not excluded(path) and not path.is_symlink():
                    yield path


def scan_paths(
    paths: Iterable[str | os.PathLike[str]], *, excludes: Sequence[str] = ()
) -> tuple[list[Finding], int]:
    """Scan files and directory trees; return all findings (fakes flagged) and the number of
    files read. Directories named in :data:`DEFAULT_EXCLUDED_DIRS` are skipped."""
    findings: list[Finding] = []
    count = 0
    for path in _iter_files(paths, excludes):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                print(f"{path}: skipped, larger than 50 MiB", file=sys.stderr)
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            print(f"{path}: not readable ({error.strerror})", file=sys.stderr)
            continue
        count += 1
        findings.extend(scan_text(str(path), text))
    return findings, count
