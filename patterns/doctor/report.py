"""Every check in the report's order, the report as text, and the notebook's shorter version."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from patterns.doctor.findings import Finding, Status
from patterns.doctor.jupyter import check_kernel, check_widgets
from patterns.doctor.machine import (
    DEFAULT_PORTS,
    check_optional_programs,
    check_ports,
)
from patterns.doctor.packages import (
    PINS_RELATIVE,
    check_packages,
    check_python,
    find_pins_file,
    read_pins,
)

__all__ = ["diagnose", "render", "run_in_notebook"]


def diagnose(
    *,
    pins_file: Path | None = None,
    ports: Mapping[int, tuple[str, str]] = DEFAULT_PORTS,
    in_kernel: bool = False,
) -> list[Finding]:
    """Run every check; the order is the report's order (required checks first)."""
    path = pins_file or find_pins_file()
    pins = read_pins(path) if path else None
    source = str(pins_file) if pins_file else str(PINS_RELATIVE)
    return [
        check_python(),
        check_packages(pins, source=source),
        check_widgets(),
        check_kernel(in_kernel=in_kernel),
        *check_ports(ports, in_kernel=in_kernel),
        *check_optional_programs(),
    ]


def render(findings: Sequence[Finding]) -> str:
    """The report: one line per check, a fix under each that is not OK, then a verdict."""
    problems = sum(finding.status is Status.PROBLEM for finding in findings)
    warnings = sum(finding.status is Status.WARNING for finding in findings)
    lines = ["Environment check (python -m patterns doctor)"]
    lines += [finding.line() for finding in findings]
    if problems:
        lines.append(
            f"Not ready: {problems} problem(s). Run the fix under each ❌, then check again."
        )
    elif warnings:
        lines.append(f"Ready, with {warnings} warning(s): the notebooks run; see the ⚠️ fixes.")
    else:
        lines.append("Ready: every notebook can run here.")
    return "\n".join(lines)


def run_in_notebook() -> bool:
    """The start-here notebook's check: the required checks in full, and one summary line
    for what varies between machines (ports, optional programs). True when ready."""
    path = find_pins_file()
    required = [
        check_python(tuple(sys.version_info[:2])),  # the patch level varies between machines
        check_packages(read_pins(path) if path else None),
        check_widgets(),
        check_kernel(in_kernel=True),
    ]
    machine = [*check_ports(in_kernel=True), *check_optional_programs()]
    summary = ", ".join(
        f"{finding.name} {'ok' if finding.status is Status.OK else 'no'}" for finding in machine
    )
    print("Environment check (python -m patterns doctor)")
    for finding in required:
        print(finding.line())
    print(f"ℹ️ this machine: {summary}")  # noqa: RUF001 - the information sign is meant
    ready = all(finding.status is Status.OK for finding in required)
    if ready:
        print("Ready: every notebook can run here. For ports and optional programs, run")
        print("`python -m patterns doctor` in a terminal.")
    else:
        print("Not ready: run the fix under each ❌, restart the kernel, and run this cell again.")
    return ready
