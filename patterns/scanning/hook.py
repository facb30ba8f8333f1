#!/usr/bin/env python3
"""Entry point of the hooks in ``.pre-commit-hooks.yaml``: ``hook.py scan FILE...`` or
``hook.py clean-notebook FILE...``.

pre-commit runs it straight from its checkout of this repository (``language: script``),
with the system's ``python3``: nothing is installed, so the hook works offline and starts in
a fraction of a second. That is possible because the scanner and the notebook cleaner use
only the standard library and this package's ``keys`` and ``errors`` modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # this folder's modules must not shadow anything by bare name
sys.path.insert(0, str(_ROOT))

from patterns.scanning import cli, notebooks  # noqa: E402 - after the path is set

_COMMANDS = {"scan": cli.main, "clean-notebook": notebooks.main}


def main(argv: list[str]) -> int:
    """Dispatch to the scan or clean-notebook command; exit status 2 for anything else."""
    if not argv or argv[0] not in _COMMANDS:
        print(f"usage: hook.py {{{','.join(_COMMANDS)}}} [options] FILE...", file=sys.stderr)
        return 2
    return _COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
