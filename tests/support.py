"""Helpers shared by the test modules.

Optional servers and browsers: a test that needs one calls :func:`require_binary`. Locally a
missing program skips the test with the reason and the install command; under ``CI=true`` it
fails, because CI installs everything (``.ci/run``) and a skip there would hide a broken
install step.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def require_binary(names: Sequence[str], *, install_hint: str) -> str:
    """Return the path of the first program in ``names`` on PATH, or skip/fail."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    missing(f"{' or '.join(names)} not found on PATH; install it with: {install_hint}")
    raise AssertionError("unreachable")  # pragma: no cover


CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
