"""Execute notebooks in place and save their outputs, the way CI checks them.

Usage: python tools/execute_notebooks.py notebooks/*.ipynb

The outputs committed in a notebook are what strict nbval compares against, so they must
come from an offline run: this script removes ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL from
the kernel's environment, stores no widget state (an ipywidgets Password value would be
saved there) and no cell timings, and then scans the result for secrets.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from patterns.scanning import find_secrets

OFFLINE_ENVIRONMENT_DROPS = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN")


def execute(path: Path) -> float:
    """Run one notebook top to bottom in its own folder; return the seconds it took."""
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # nbclient's Output-widget capture needs its widget-state table; the state itself is
        # dropped below, before anything is written.
        store_widget_state=True,
        record_timing=False,
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    text = nbformat.writes(notebook)  # type: ignore[no-untyped-call]
    leaks = find_secrets(text)
    if leaks:
        raise SystemExit(f"{path}: refusing to save, {len(leaks)} secret(s) in the outputs")
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return elapsed


def main(paths: list[str]) -> int:
    for name in OFFLINE_ENVIRONMENT_DROPS:
        os.environ.pop(name, None)
    for name in paths:
        seconds = execute(Path(name))
        print(f"{name}: executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
