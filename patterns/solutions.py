"""``python -m patterns solutions --show|--hide PATH...``: the trainer's solutions switch.

Every exercise ends with a solution cell tagged ``solution`` whose source is collapsed when
the notebook opens: JupyterLab 4 reads the cell metadata ``jupyter.source_hidden`` and shows
a "..." placeholder instead of the code (one click expands it). ``--show`` clears that flag in
every solution cell, so a trainer's copy opens with the solutions visible; ``--hide`` sets it
again. Only that flag changes: sources, outputs and every other cell stay byte-for-byte the
same (nbformat writes the file, as ``tools/execute_notebooks.py`` does).

In a running JupyterLab the same switch is the menu View > Expand All Code (and Collapse All
Code), which affects every cell of the open notebook and is not saved unless you save.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["SOLUTION_TAG", "add_arguments", "is_solution", "notebooks_in", "run", "set_hidden"]

SOLUTION_TAG = "solution"


def is_solution(cell: Any) -> bool:
    """A code cell tagged ``solution``."""
    return bool(cell.get("cell_type") == "code" and SOLUTION_TAG in cell.metadata.get("tags", []))


def notebooks_in(paths: Iterable[Path]) -> Iterator[Path]:
    """Each ``.ipynb`` named, or found (sorted, checkpoints skipped) under a folder named."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in found.parts:
                    yield found
        else:
            yield path


def set_hidden(path: Path, *, hidden: bool) -> int:
    """Collapse (or expand) the source of every solution cell of one notebook; rewrite the
    file only if something changed. Returns the number of solution cells changed."""
    import nbformat  # here, not at the top: it costs seconds on every `python -m patterns`

    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    changed = 0
    for cell in notebook.cells:
        if not is_solution(cell):
            continue
        jupyter = cell.metadata.setdefault("jupyter", {})
        if bool(jupyter.get("source_hidden", False)) == hidden:
            continue
        if hidden:
            jupyter["source_hidden"] = True
        else:
            jupyter.pop("source_hidden", None)
        if not jupyter:
            del cell.metadata["jupyter"]
        changed += 1
    if changed:
        text = nbformat.writes(notebook)  # type: ignore[no-untyped-call]
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return changed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``solutions``."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--show", action="store_true", help="expand the solutions' source")
    mode.add_argument("--hide", action="store_true", help="collapse it again (the default)")
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="notebooks or folders of notebooks"
    )


def run(args: argparse.Namespace) -> int:
    """Flip the flag in every notebook named; say what changed. Exit 2 if a path is missing."""
    hidden = bool(args.hide)
    missing = [path for path in args.paths if not path.exists()]
    if missing:
        print(f"solutions: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    total = 0
    for path in notebooks_in(args.paths):
        changed = set_hidden(path, hidden=hidden)
        total += changed
        if changed:
            print(f"{path}: {changed} solution(s) {'hidden' if hidden else 'shown'}")
    verb = "hidden" if hidden else "shown"
    print(f"solutions: {total} cell(s) changed; every solution is now {verb}.")
    print("Reload open notebooks in JupyterLab (File > Reload Notebook from Disk).")
    return 0
