"""Print pinned requirements for the environment this interpreter runs in.

``runtime``: every installed distribution except pip, setuptools, wheel and this package.
``dev BASE``: what is installed beyond the pins in BASE (the test and development tools),
preceded by ``-r BASE`` so that one file installs both. Used by ``make pins``.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

SKIPPED = {"pip", "setuptools", "wheel", "anthropic-key-patterns"}


def installed() -> dict[str, str]:
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in SKIPPED:
            pins[name] = dist.version
    return pins


def pinned_names(path: Path) -> set[str]:
    names = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split("==", 1)[0].lower())
    return names


def main(argv: list[str]) -> int:
    pins = installed()
    if argv[:1] == ["runtime"]:
        print("# Fully pinned runtime environment for Binder (and the base of make lab / test).")
        print("# Regenerate with: make pins  (tests/test_packaging.py checks it against pyproject)")
        rows = pins
    elif argv[:1] == ["dev"] and len(argv) == 2:
        base = pinned_names(Path(argv[1]))
        print("# Pinned test and development tools, on top of the Binder runtime pins.")
        print("# Regenerate with: make pins")
        print("-r binder/requirements.txt")
        rows = {name: version for name, version in pins.items() if name.lower() not in base}
    else:
        print("usage: write_pins.py runtime | dev BASE_REQUIREMENTS", file=sys.stderr)
        return 2
    for name in sorted(rows, key=str.lower):
        print(f"{name}=={rows[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
