"""The key-lifecycle commands of ``python -m patterns``.

clean-notebook PATH...   redact secrets and widget state (and outputs) before sharing
"""

from __future__ import annotations

import argparse
from typing import Any

from patterns.scanning.notebooks import add_clean_arguments, run_clean

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register the lifecycle commands on the top-level parser's subcommands."""
    clean = commands.add_parser(
        "clean-notebook",
        help="redact secrets and widget state from notebooks before sharing them",
        description="Redact every key-shaped string (code, outputs, metadata), drop saved "
        "widget state and widget views, and with --strip-outputs clear all outputs. Files "
        "are rewritten atomically and only when something changes. Exit status: 0 done, "
        "1 --check found work, 2 a file is not a readable notebook.",
    )
    add_clean_arguments(clean)
    clean.set_defaults(handler=run_clean)
