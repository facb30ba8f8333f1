"""Find Anthropic secrets in text, files and notebooks, and redact them from logs.

The detection rules follow the formats that public secret scanners use for Anthropic keys
(see ``docs/key-formats.md``). A finding is always reported by its fingerprint display
(``sk-ant-api03-…x7AA (sha256:1a2b3c4d)``), never by the key itself, so a scan report can be
pasted into a ticket.

Fake keys that carry a visible marker (DEMO, TEST, FAKE, EXAMPLE, CANARY) are allowed by the
scanner, because this project's notebooks and tests need format-valid keys; they are still
redacted from logs, because a log line is no place for anything key-shaped.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from patterns.keys import FAKE_MARKERS, describe_secret

__all__ = [
    "DEFAULT_EXCLUDED_DIRS",
    "RULES",
    "Finding",
    "RedactingFilter",
    "Rule",
    "Scanner",
    "add_scan_arguments",
    "find_secrets",
    "install_log_redaction",
    "is_fake",
    "redact",
    "run_scan",
    "scan_paths",
]

_BEFORE: Final = r"(?<![A-Za-z0-9])"
_AFTER: Final = r"(?![A-Za-z0-9_-])"
_BODY: Final = r"[A-Za-z0-9_-]"


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule: an identifier for reports and the regular expression it uses."""

    id: str
    description: str
    pattern: str


#: Rules in priority order: at any position the first rule that matches wins, so an exact
#: key format is reported by its own rule and only leftovers fall to ``anthropic-key-like``.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "anthropic-api-key",
        "Anthropic API key (sk-ant-api03-)",
        rf"{_BEFORE}sk-ant-api03-{_BODY}{{93}}AA{_AFTER}",
    ),
    Rule(
        "anthropic-admin-key",
        "Anthropic Admin API key (sk-ant-admin01-)",
        rf"{_BEFORE}sk-ant-admin01-{_BODY}{{93}}AA{_AFTER}",
    ),
    Rule(
        "anthropic-oauth-access-token",
        "Anthropic OAuth access token (sk-ant-oat01-)",
        rf"{_BEFORE}sk-ant-oat01-{_BODY}{{40,}}",
    ),
    Rule(
        "anthropic-oauth-refresh-token",
        "Anthropic OAuth refresh token (sk-ant-ort01-)",
        rf"{_BEFORE}sk-ant-ort01-{_BODY}{{40,}}",
    ),
    Rule(
        "patterns-temporary-token",
        "Temporary token minted by this project's token proxy (akp_tmp_)",
        rf"{_BEFORE}akp_tmp_{_BODY}{{43}}{_AFTER}",
    ),
    Rule(
        "anthropic-key-like",
        "Truncated, extended or unknown-version Anthropic secret (sk-ant-...)",
        rf"{_BEFORE}sk-ant-[a-z]+[0-9]{{2}}-{_BODY}{{20,}}",
    ),
)

# Credentials in HTTP header dumps (``x-api-key: ...``, ``('authorization', 'Bearer ...')``):
# redacted from logs whatever their format, because httpx masks only Authorization headers.
_HEADER_VALUE_RE: Final = re.compile(
    r"(?i)((?:x-api-key|api[_-]?key)['\"]?\s*[:=,]\s*b?['\"]?"
    r"|authorization['\"]?\s*[:=,]\s*b?['\"]?(?:bearer|basic)\s+)"
    r"(?!\[REDACTED)([^\s'\",;})\]]+)"
)


def is_fake(value: str) -> bool:
    """True when a key-shaped value carries a marker that says it is not a real key."""
    return any(marker in value for marker in FAKE_MARKERS)


@dataclass(frozen=True, slots=True)
class Match:
    """A secret found in a piece of text (holds the value: keep it inside this module)."""

    rule: Rule
    start: int
    end: int
    value: str

    @property
    def display(self) -> str:
        return describe_secret(self.value)


class Scanner:
    """A compiled set of rules; :data:`RULES` by default."""

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        self.rules = tuple(rules)
        combined = "|".join(f"(?P<r{i}>{rule.pattern})" for i, rule in enumerate(self.rules))
        self._regex = re.compile(combined)

    def matches(self, text: str) -> Iterator[Match]:
        """Yield every secret in ``text``, fakes included, in order of position."""
        for found in self._regex.finditer(text):
            index = int(found.lastgroup[1:]) if found.lastgroup else 0
            yield Match(self.rules[index], found.start(), found.end(), found.group(0))

    def redact(self, text: str) -> str:
        """Replace every secret, fake or real, and every credential header value."""
        redacted = self._regex.sub(lambda m: f"[REDACTED {describe_secret(m.group(0))}]", text)
        return _HEADER_VALUE_RE.sub(lambda m: m.group(1) + "[REDACTED]", redacted)


_DEFAULT_SCANNER: Final = Scanner()


def find_secrets(text: str, *, include_fakes: bool = False) -> list[Match]:
    """Return the secrets in ``text``; marked fakes are left out unless ``include_fakes``."""
    return [m for m in _DEFAULT_SCANNER.matches(text) if include_fakes or not is_fake(m.value)]


def redact(text: str) -> str:
    """Return ``text`` with every key-shaped string and credential header value replaced."""
    return _DEFAULT_SCANNER.redact(text)


# -- logging ------------------------------------------------------------------------------


def _redact_arg(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from the message, its arguments, the exception
    text and the stack info of every record it sees.

    Attach it to *handlers* (as :func:`install_log_redaction` does): a filter on a logger
    does not see records that propagate from its children. Arguments are redacted one by one
    rather than merged into the message, so formatters that read ``record.args`` (uvicorn's
    access log does) keep working.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact_arg(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redact_arg(arg) for name, arg in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)
            record.exc_info = None  # the formatter now prints the redacted exc_text only
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_LOGGERS_TO_GUARD: Final = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


def install_log_redaction(logger_names: Iterable[str] = _LOGGERS_TO_GUARD) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of the named loggers (the root
    logger by default, plus uvicorn's and httpx's) and to :data:`logging.lastResort`.

    Idempotent. Handlers added afterwards need the filter too; the servers started by
    :mod:`patterns.serving` configure theirs with it.
    """
    handlers: list[logging.Handler] = []
    for name in logger_names:
        handlers.extend(logging.getLogger(name).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    shared = RedactingFilter()
    for handler in handlers:
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if existing:
            shared = existing[0]
        else:
            handler.addFilter(shared)
    return shared


# -- files and notebooks -----------------------------------------------------------------

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
_MAX_FILE_BYTES: Final = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret found in a file, described without the secret."""

    path: str
    location: str  # a line number, or a place inside a notebook's JSON
    rule_id: str
    display: str  # prefix, last 4 characters and fingerprint; never the key
    fake: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.location}: {self.rule_id} {self.display}"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


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


def _scan_text_file(path: str, text: str) -> list[Finding]:
    return [
        Finding(path, str(_line_of(text, m.start)), m.rule.id, m.display, is_fake(m.value))
        for m in _DEFAULT_SCANNER.matches(text)
    ]


def _scan_notebook(path: str, text: str) -> list[Finding]:
    """Scan a notebook's raw JSON (for line numbers) and then every decoded string in it
    (code, outputs, metadata, widget state), so that JSON escapes cannot hide a key."""
    findings = _scan_text_file(path, text)
    try:
        document = json.loads(text)
    except ValueError:
        return findings
    for where, string in _walk_json(document, ""):
        for m in _DEFAULT_SCANNER.matches(string):
            if m.value not in text:  # only what the raw scan could not see
                findings.append(Finding(path, where, m.rule.id, m.display, is_fake(m.value)))
    return findings


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
            if path.stat().st_size > _MAX_FILE_BYTES:
                print(f"{path}: skipped, larger than 50 MiB", file=sys.stderr)
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            print(f"{path}: not readable ({error.strerror})", file=sys.stderr)
            continue
        count += 1
        scan = _scan_notebook if path.suffix == ".ipynb" else _scan_text_file
        findings.extend(scan(str(path), text))
    return findings, count


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``python -m patterns scan``."""
    parser.add_argument("paths", nargs="*", default=["."], help="files or directories")
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
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run_scan(args: argparse.Namespace) -> int:
    """Run a scan from parsed arguments; exit status 1 on findings, 0 otherwise."""
    for path in args.paths:
        if not os.path.exists(path):
            print(f"scan: no such file or directory: {path}", file=sys.stderr)
            return 2
    findings, count = scan_paths(args.paths, excludes=args.exclude)
    reported = [f for f in findings if args.include_fakes or not f.fake]
    allowed = len(findings) - len(reported)
    if args.format == "json":
        rows = [
            {"path": f.path, "location": f.location, "rule": f.rule_id, "secret": f.display}
            for f in reported
        ]
        print(json.dumps({"findings": rows, "files": count, "fakes_allowed": allowed}, indent=2))
    else:
        for finding in reported:
            print(finding)
    note = f" ({allowed} marked fake key{'s' * (allowed != 1)} allowed)" if allowed else ""
    if reported:
        print(
            f"scan: {len(reported)} secret{'s' * (len(reported) != 1)} found in {count} "
            f"files{note}. Revoke each real key in the Anthropic Console, then remove it.",
            file=sys.stderr,
        )
        return 1
    print(f"scan: no secrets found in {count} files{note}.", file=sys.stderr)
    return 0
