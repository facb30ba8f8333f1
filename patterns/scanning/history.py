"""Scan a git repository's history: every blob that any reachable commit added or changed.

A key deleted in a later commit is still in the history, and anyone with a clone can read
it: only revoking the key helps (rewriting history does not reach the clones). This scan
finds such keys and names the commit, path and line that introduced each one.

How it works, and why (measured on this repository; see ``docs/lifecycle.md``):
``git log --all --raw`` lists, per commit, the blobs it added or changed (merges against
their first parent, so an edit made while resolving a merge is seen too); each distinct
blob is read once through one ``git cat-file --batch`` process and scanned whole, so line
numbers are those of the file in that commit. A secret is reported for a commit only when
the file's previous version did not already hold it, so a key that sits in a file for a
hundred commits is reported once, at the commit that added it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Final

from patterns.errors import ConfigurationError
from patterns.scanning.files import DEFAULT_EXCLUDED_DIRS, MAX_FILE_BYTES, Finding, scan_text

__all__ = ["HistoryScan", "scan_git_history"]

_EMPTY_BLOB: Final = "0" * 40
_GITLINK: Final = "160000"  # a submodule's commit, not a file
_TIMEOUT: Final = 600.0
# The repository being scanned may be untrusted: no fsmonitor hook, no external diff or
# textconv program (the log below also passes --no-ext-diff and --no-textconv).
_HARDENING: Final = ("-c", "core.fsmonitor=false", "-c", "diff.external=")


@dataclass(frozen=True, slots=True)
class _Change:
    commit: str
    path: str
    old_blob: str  # all zeros when the file is new in this commit
    new_blob: str


@dataclass(frozen=True, slots=True)
class HistoryScan:
    """What a history scan found, and how much it read."""

    findings: list[Finding]
    commits: int
    blobs: int


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise ConfigurationError("git is not installed; install it to scan a repository's history")
    return git


def _run(repo: str, *args: str) -> bytes:
    result = subprocess.run(  # noqa: S603 - fixed git subcommands, no shell
        [_git(), "-C", repo, *_HARDENING, *args],
        capture_output=True,
        timeout=_TIMEOUT,
        check=False,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"},
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ConfigurationError(
            f"git {args[0]} failed in {repo}: {message[-1] if message else 'no message'}"
        )
    return result.stdout


def _excluded(path: str, excludes: Sequence[str]) -> bool:
    parts = PurePosixPath(path).parts
    if any(part in DEFAULT_EXCLUDED_DIRS for part in parts[:-1]):
        return True
    return any(fnmatch.fnmatch(path, pattern) for pattern in excludes)


def _changes(repo: str, excludes: Sequence[str]) -> tuple[list[_Change], int]:
    """Every (commit, path) that added or changed a blob, in ``git log`` order."""
    raw = _run(
        repo,
        "log",
        "--all",
        "--root",
        "--diff-merges=first-parent",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "-z",
        "--format=%x01%H",
    )
    changes: list[_Change] = []
    commits = 0
    for chunk in raw.decode("utf-8", errors="surrogateescape").split("\x01")[1:]:
        tokens = chunk.split("\x00")
        commit = tokens[0].strip()
        commits += 1
        for meta, path in zip(tokens[1::2], tokens[2::2], strict=False):
            fields = meta.strip().lstrip(":").split()
            if len(fields) != 5:
                continue
            _old_mode, new_mode, old_blob, new_blob, status = fields
            if status[0] not in "AMT" or new_mode == _GITLINK or _excluded(path, excludes):
                continue
            old = old_blob if status[0] == "M" else _EMPTY_BLOB
            changes.append(_Change(commit, path, old, new_blob))
    return changes, commits


def _write_names(stream: IO[bytes], names: Iterable[str]) -> None:
    try:
        for name in names:
            stream.write(name.encode("ascii") + b"\n")
    finally:
        stream.close()


def _read_blobs(repo: str, names: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    """Yield (blob, content) for each name, through one ``git cat-file --batch`` process;
    content is None for a blob larger than the scanner reads."""
    process = subprocess.Popen(  # noqa: S603 - fixed git subcommand, no shell
        [_git(), "-C", repo, *_HARDENING, "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    if process.stdin is None or process.stdout is None:  # pragma: no cover - PIPE was asked
        raise ConfigurationError("could not talk to git cat-file")
    writer = threading.Thread(target=_write_names, args=(process.stdin, names), daemon=True)
    writer.start()
    try:
        for name in names:
            header = process.stdout.readline().split()
            if len(header) != 3:  # "<name> missing": a blob the clone does not have
                continue
            size = int(header[2])
            if size > MAX_FILE_BYTES:
                left = size + 1
                while left > 0:
                    left -= len(process.stdout.read(min(left, 1 << 20)) or b"x" * left)
                yield name, None
                continue
            content = process.stdout.read(size)
            process.stdout.read(1)  # the newline after each object
            yield name, content
    finally:
        writer.join(timeout=_TIMEOUT)
        process.stdout.close()
        process.wait(timeout=_TIMEOUT)


def scan_git_history(
    repo: str | os.PathLike[str] = ".", *, excludes: Sequence[str] = ()
) -> HistoryScan:
    """Scan every blob added or changed by any commit reachable from any ref of ``repo``.

    Each finding names the commit that introduced the secret, the path and the line (or the
    place inside a notebook's JSON); never the secret. ``excludes`` are globs matched against
    repository paths (``tests/fixtures/*``). Raises :class:`ConfigurationError` when ``repo``
    is not a git repository or git is missing.
    """
    where = os.fspath(repo)
    _run(where, "rev-parse", "--git-dir")
    changes, commits = _changes(where, excludes)
    wanted = list(dict.fromkeys(change.new_blob for change in changes))
    paths = {change.new_blob: change.path for change in changes}
    found: dict[str, list[Finding]] = {}
    for blob, content in _read_blobs(where, wanted):
        if content is None:
            continue
        findings = scan_text(paths[blob], content.decode("utf-8", errors="replace"))
        if findings:
            found[blob] = findings
    # A blob with findings replaced an older version of its file: was the secret there already?
    old_paths = {
        c.old_blob: c.path for c in changes if c.new_blob in found and c.old_blob != _EMPTY_BLOB
    }
    already: dict[str, set[str]] = {}
    for blob, content in _read_blobs(where, list(old_paths)):
        text = "" if content is None else content.decode("utf-8", errors="replace")
        already[blob] = {f.secret_hash for f in scan_text(old_paths[blob], text)}
    results: list[Finding] = []
    for change in changes:
        kept = already.get(change.old_blob, set())
        for finding in found.get(change.new_blob, ()):
            if finding.secret_hash not in kept:
                results.append(_at(finding, change))
    return HistoryScan(results, commits, len(wanted))


def _at(finding: Finding, change: _Change) -> Finding:
    return Finding(
        change.path,
        finding.location,
        finding.rule_id,
        finding.display,
        finding.fake,
        change.commit,
        finding.secret_hash,
    )
