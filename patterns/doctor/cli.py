"""The ``doctor`` command's options and exit status (``python -m patterns doctor``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patterns.doctor.findings import Status
from patterns.doctor.machine import DEFAULT_PORTS
from patterns.doctor.report import diagnose, render

__all__ = ["add_arguments", "run"]


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
