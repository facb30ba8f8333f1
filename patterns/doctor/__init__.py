"""``python -m patterns doctor``: check a participant's environment and name the fix.

A workshop loses its first twenty minutes to environments. The doctor checks, in order, what
the notebooks need (Python version, the pinned packages, the widgets front end, the kernel)
and what some exercises and tests use (the fixed ports 8888, 8420 and 8430, and the optional
programs redis-server, chromium and bao). Every problem comes with the command that fixes it.

Required checks that fail make the exit status 1; a busy port is a warning (the servers can
take another port) and a missing optional program is only noted. Each check takes its probes
as parameters (pins, search paths, ports, ``which``) so tests can inject a problem for real.
The first cell of ``notebooks/00-start-here.ipynb`` runs :func:`run_in_notebook`.

The checks live in :mod:`~patterns.doctor.packages` (Python and the pins),
:mod:`~patterns.doctor.jupyter` (widgets and kernel) and :mod:`~patterns.doctor.machine`
(ports and optional programs); :mod:`~patterns.doctor.report` runs them in order and
:mod:`~patterns.doctor.cli` is the command. Every name is importable from here.
"""

from __future__ import annotations

from patterns.doctor.cli import add_arguments, run
from patterns.doctor.findings import Finding, Status
from patterns.doctor.jupyter import WIDGETS_EXTENSION as WIDGETS_EXTENSION
from patterns.doctor.jupyter import check_kernel, check_widgets
from patterns.doctor.machine import (
    DEFAULT_PORTS,
    OPTIONAL_PROGRAMS,
    check_optional_programs,
    check_ports,
)
from patterns.doctor.machine import port_is_free as port_is_free
from patterns.doctor.packages import DISTRIBUTION as DISTRIBUTION
from patterns.doctor.packages import INSTALL_PINS as INSTALL_PINS
from patterns.doctor.packages import PINS_RELATIVE as PINS_RELATIVE
from patterns.doctor.packages import VersionOf as VersionOf
from patterns.doctor.packages import check_packages, check_python, find_pins_file, read_pins
from patterns.doctor.packages import installed_version as installed_version
from patterns.doctor.report import diagnose, render, run_in_notebook

# Also public, though not in __all__ (as before the package split): ``X as X`` re-exports
# WIDGETS_EXTENSION, port_is_free, DISTRIBUTION, INSTALL_PINS, PINS_RELATIVE, VersionOf and
# installed_version.
__all__ = [
    "DEFAULT_PORTS",
    "OPTIONAL_PROGRAMS",
    "Finding",
    "Status",
    "add_arguments",
    "check_kernel",
    "check_optional_programs",
    "check_packages",
    "check_ports",
    "check_python",
    "check_widgets",
    "diagnose",
    "find_pins_file",
    "read_pins",
    "render",
    "run",
    "run_in_notebook",
]
