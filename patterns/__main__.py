"""Command line: ``python -m patterns <command>`` (also installed as ``patterns``).

Commands:
  scan PATH...   find Anthropic secrets in files and notebooks (exit 1 on findings)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from patterns import scanning


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each command declares its own options."""
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return its exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
