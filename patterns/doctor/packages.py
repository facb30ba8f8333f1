"""The interpreter and the pinned packages: what every notebook needs before anything else.

The pins come from ``binder/requirements.txt`` of the checkout when there is one (a workshop
installs exactly those), else from the package's declared ranges (an install from a wheel).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import patterns
from patterns.doctor.findings import Finding, Status

__all__ = [
    "DISTRIBUTION",
    "INSTALL_PINS",
    "PINS_RELATIVE",
    "VersionOf",
    "check_packages",
    "check_python",
    "find_pins_file",
    "installed_version",
    "read_pins",
]

DISTRIBUTION: Final = "anthropic-key-patterns"
PINS_RELATIVE: Final = Path("binder") / "requirements.txt"
INSTALL_PINS: Final = "python -m pip install -r binder/requirements.txt"


VersionOf = Callable[[str], str | None]


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_python(
    version: Sequence[int] = tuple(sys.version_info[:3]), minimum: Sequence[int] = (3, 11)
) -> Finding:
    shown = ".".join(map(str, version))
    needed = ".".join(map(str, minimum))
    if tuple(version[:2]) >= tuple(minimum):
        return Finding("Python", Status.OK, f"{shown} (the suite needs {needed} or newer)")
    return Finding(
        "Python",
        Status.PROBLEM,
        f"{shown} is too old; the suite needs {needed} or newer",
        f"install Python {needed}+, then: make PYTHON=python{needed} lab",
    )


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a pins file (comments and blank lines skipped)."""
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def find_pins_file(starts: Iterable[Path] | None = None) -> Path | None:
    """``binder/requirements.txt`` of the checkout: searched upwards from the working folder
    (a notebook runs in ``notebooks/``) and from the package (an editable install)."""
    if starts is None:
        starts = (Path.cwd(), Path(patterns.__file__).resolve().parent)
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / PINS_RELATIVE
            if candidate.is_file():
                return candidate
    return None


def _declared_requirements() -> dict[str, SpecifierSet]:
    """The package's own runtime requirements (used when no pins file is around)."""
    wanted: dict[str, SpecifierSet] = {}
    for raw in metadata.requires(DISTRIBUTION) or []:
        requirement = Requirement(raw)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            wanted[canonicalize_name(requirement.name)] = requirement.specifier
    return wanted


def check_packages(
    pins: Mapping[str, str] | None = None,
    *,
    source: str = str(PINS_RELATIVE),
    version_of: VersionOf = installed_version,
) -> Finding:
    """Every pinned package installed at its pin; without pins, within the declared ranges."""
    if pins is None:
        wanted = _declared_requirements()
        source = f"the requirements of {DISTRIBUTION}"
    else:
        wanted = {name: SpecifierSet(f"=={version}") for name, version in pins.items()}
    missing = sorted(name for name in wanted if version_of(name) is None)
    wrong = sorted(
        f"{name} {version_of(name)} (wanted {wanted[name]})"
        for name in wanted
        if name not in missing and not wanted[name].contains(version_of(name) or "")
    )
    if not missing and not wrong:
        return Finding("packages", Status.OK, f"all {len(wanted)} in {source} installed as pinned")
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if wrong:
        parts.append(f"other versions: {'; '.join(wrong)}")
    return Finding(
        "packages",
        Status.PROBLEM,
        f"{' and '.join(parts)} (against {source})",
        f"{INSTALL_PINS}  (or, in a checkout: make clean lab)",
    )
