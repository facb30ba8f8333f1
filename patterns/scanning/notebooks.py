"""Clean a notebook before it is shared: redact secrets, drop widget state, optionally outputs.

Widget state is saved into a notebook's metadata by JupyterLab's "save widget state" and by
nbclient: every value a widget held (an ipywidgets ``Password`` value included) ends up in
the file. Outputs keep whatever a cell printed. This helper works on the decoded JSON, so a
key hidden behind JSON escapes is found too, and it writes the file atomically (temporary
file + rename) and only when something changed.

Code is redacted with the key rules only; outputs and metadata also lose credential header
values (``x-api-key: ...``), which a printed request dump may hold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from patterns.errors import ConfigurationError
from patterns.keys import describe_secret
from patterns.scanning.rules import default_scanner, redact

__all__ = [
    "CleanReport",
    "add_clean_arguments",
    "clean_notebook",
    "clean_notebook_file",
    "main",
    "run_clean",
]

_WIDGET_VIEW: Final = "application/vnd.jupyter.widget-view+json"


@dataclass(frozen=True, slots=True)
class CleanReport:
    """What cleaning did to one notebook (counts only; nothing it removed)."""

    path: str
    secrets_redacted: int
    widget_state_removed: bool
    widget_views_removed: int
    outputs_cleared: int

    @property
    def changed(self) -> bool:
        return bool(
            self.secrets_redacted
            or self.widget_state_removed
            or self.widget_views_removed
            or self.outputs_cleared
        )

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.path}: clean"
        parts = [f"{self.secrets_redacted} secret(s) redacted"]
        if self.widget_state_removed:
            parts.append("widget state removed")
        if self.widget_views_removed:
            parts.append(f"{self.widget_views_removed} widget view(s) removed")
        if self.outputs_cleared:
            parts.append(f"outputs of {self.outputs_cleared} cell(s) cleared")
        return f"{self.path}: " + ", ".join(parts)


class _Redactor:
    def __init__(self) -> None:
        self.count = 0

    def keys_only(self, text: str) -> str:
        pieces: list[str] = []
        last = 0
        for found in default_scanner.matches(text):
            self.count += 1
            pieces.append(text[last : found.start])
            pieces.append(f"[REDACTED {describe_secret(found.value)}]")
            last = found.end
        return "".join(pieces) + text[last:] if pieces else text

    def everything(self, text: str) -> str:
        cleaned = redact(text)
        self.count += cleaned.count("[REDACTED") - text.count("[REDACTED")
        return cleaned

    def walk(self, value: Any, clean: Callable[[str], str]) -> Any:
        if isinstance(value, str):
            return clean(value)
        if isinstance(value, list):
            return [self.walk(item, clean) for item in value]
        if isinstance(value, dict):
            return {self.walk(k, clean): self.walk(v, clean) for k, v in value.items()}
        return value


def _clean_outputs(outputs: list[Any], redactor: _Redactor) -> tuple[list[Any], int]:
    """Redacted outputs without widget views (their state is gone, so they cannot render)."""
    kept, views = [], 0
    for output in outputs:
        data = output.get("data")
        if isinstance(data, dict) and _WIDGET_VIEW in data:
            views += 1
            rest = {k: v for k, v in data.items() if k != _WIDGET_VIEW}
            if not rest:
                continue
            output = {**output, "data": rest}  # noqa: PLW2901 - a cleaned copy
        kept.append(redactor.walk(output, redactor.everything))
    return kept, views


def clean_notebook(
    document: dict[str, Any], *, strip_outputs: bool = False, path: str = "<notebook>"
) -> tuple[dict[str, Any], CleanReport]:
    """Return a cleaned copy of a notebook's JSON document and what was done."""
    if not isinstance(document.get("cells"), list):
        raise ConfigurationError(f"{path}: not a Jupyter notebook (no cells list)")
    redactor = _Redactor()
    metadata = dict(document.get("metadata") or {})
    state_removed = metadata.pop("widgets", None) is not None
    views, cleared = 0, 0
    cells = []
    for original in document["cells"]:
        cell = dict(original)
        if cell.get("cell_type") == "code":
            if strip_outputs and (cell.get("outputs") or cell.get("execution_count")):
                cleared += 1
                cell["outputs"], cell["execution_count"] = [], None
            cell["outputs"], removed = _clean_outputs(cell.get("outputs") or [], redactor)
            views += removed
        cell["source"] = redactor.walk(cell.get("source", ""), redactor.keys_only)
        for name in ("metadata", "attachments"):
            if name in cell:
                cell[name] = redactor.walk(cell[name], redactor.everything)
        cells.append(cell)
    cleaned = {**document, "cells": cells, "metadata": redactor.walk(metadata, redactor.everything)}
    report = CleanReport(path, redactor.count, state_removed, views, cleared)
    return cleaned, report


def clean_notebook_file(
    path: str | os.PathLike[str], *, strip_outputs: bool = False, check: bool = False
) -> CleanReport:
    """Clean a notebook file in place (atomically, only if needed); ``check`` writes nothing.

    Raises :class:`ConfigurationError` for a file that is not a notebook; it is left as it was.
    """
    target = Path(path)
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid JSON"
        raise ConfigurationError(f"{target}: cannot read the notebook ({reason})") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{target}: not a Jupyter notebook")
    cleaned, report = clean_notebook(document, strip_outputs=strip_outputs, path=str(target))
    if report.changed and not check:
        text = json.dumps(cleaned, indent=1, ensure_ascii=False) + "\n"
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.chmod(temporary, target.stat().st_mode & 0o777)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return report


def add_clean_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``python -m patterns clean-notebook``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks (.ipynb) to clean")
    parser.add_argument(
        "--strip-outputs", action="store_true", help="also clear every code cell's outputs"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if a notebook needs cleaning (for CI)",
    )


def run_clean(args: argparse.Namespace) -> int:
    """Clean each notebook; exit 0 when all are clean or were cleaned, 1 when ``--check``
    found work to do, 2 when a file is not a readable notebook (that file is untouched)."""
    status = 0
    for path in args.paths:
        try:
            report = clean_notebook_file(path, strip_outputs=args.strip_outputs, check=args.check)
        except ConfigurationError as error:
            print(f"clean-notebook: {error}", file=sys.stderr)
            status = 2
            continue
        if report.changed and args.check:
            print(f"{report} (would be; nothing written)")
            status = max(status, 1)
        elif report.changed:
            print(report)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m patterns.scanning.notebooks``: the cleaner alone (standard library only)."""
    parser = argparse.ArgumentParser(
        prog="python -m patterns.scanning.notebooks",
        description="Redact secrets, widget state and (optionally) outputs from notebooks.",
    )
    add_clean_arguments(parser)
    return run_clean(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
