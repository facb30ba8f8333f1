"""Command line: ``python -m patterns <command>`` (also installed as ``patterns``).

Commands:
  scan PATH...      find Anthropic secrets in files and notebooks (exit 1 on findings)
  serve TARGET      run a server in the foreground (``serve upstream``: the API stand-in)
  doctor            check this environment for the notebooks and name the fixes
  solutions         --show or --hide the exercises' solutions (the trainer's switch)
  clean-notebook    redact secrets and widget state from notebooks before sharing
  key-age, rotate-kms, rotate-org-key, incident   key lifecycle (patterns.lifecycle)
  monitor LOG...    per-user usage and anomaly alerts from audit logs (exit 1 on alerts)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

from patterns import doctor, scanning, solutions
from patterns.lifecycle import cli as lifecycle
from patterns.lifecycle.monitoring import cli as monitor

#: ``serve`` targets: name -> (module, help). Each module defines ``add_arguments(parser)``
#: and ``run(args) -> int``; adding a server (``bff``, ``token-proxy``) is one line here.
SERVE_TARGETS: Final[dict[str, tuple[str, str]]] = {
    "upstream": ("patterns.upstream.cli", "the local stand-in for the Anthropic API"),
    "token-proxy": ("patterns.tokens.cli", "the proxy that accepts temporary tokens"),
    "bff": ("patterns.bff.cli", "the backend-for-frontend (sessions, key vault, proxy)"),
}


def _add_serve(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], *, load: bool = True
) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a server in the foreground",
        description="Run one of the suite's servers on loopback until interrupted.",
    )
    targets = serve.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, (module_name, text) in SERVE_TARGETS.items():
        target = targets.add_parser(name, help=text, description=text)
        if load:  # a server module imports its web framework: only pay for it to serve
            module = importlib.import_module(module_name)
            module.add_arguments(target)
            target.set_defaults(handler=module.run)


def build_parser(*, load_servers: bool = True) -> argparse.ArgumentParser:
    """The top-level parser; each command declares its own options. ``load_servers=False``
    leaves the ``serve`` targets' options out, so other commands start without FastAPI."""
    parser = argparse.ArgumentParser(
        prog="python -m patterns",
        description="Reference patterns for handling Anthropic API keys.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    scan = commands.add_parser(
        "scan",
        help="find Anthropic secrets in files and notebooks",
        description="Scan files, directories and notebooks (code, outputs, metadata and "
        "widget state) for Anthropic secrets. Prints path:line: rule fingerprint, never the "
        "key. Exit status: 0 clean, 1 secrets found, 2 usage error.",
    )
    scanning.add_scan_arguments(scan)
    scan.set_defaults(handler=scanning.run_scan)
    _add_serve(commands, load=load_servers)
    lifecycle.add_commands(commands)
    monitor.add_command(commands)
    checkup = commands.add_parser(
        "doctor",
        help="check this environment for the notebooks and name the fixes",
        description="Check Python, the pinned packages, the widgets front end, the kernel, "
        "the fixed ports and the optional programs. Exit status: 0 ready, 1 a required check "
        "failed, 2 usage error.",
    )
    doctor.add_arguments(checkup)
    checkup.set_defaults(handler=doctor.run)
    switch = commands.add_parser(
        "solutions",
        help="show or hide the exercises' solutions (the trainer's switch)",
        description="Expand (--show) or collapse (--hide) the source of every cell tagged "
        "'solution' in the notebooks named, through the jupyter.source_hidden metadata that "
        "JupyterLab reads when it opens a notebook. Nothing else in the files changes.",
    )
    solutions.add_arguments(switch)
    switch.set_defaults(handler=solutions.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return its exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(load_servers=given[:1] == ["serve"]).parse_args(given)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
