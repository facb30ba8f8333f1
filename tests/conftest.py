"""Shared fixtures. Tests run offline: a real key or base URL in the environment is removed
so that no test (and no notebook kernel started by nbval) can reach the real API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import CHROMIUM_ARGS, missing, require_binary

for _name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the system Chromium (Debian package ``chromium``)."""
    configured = os.environ.get("PATTERNS_CHROMIUM")
    if configured:
        return configured
    return require_binary(["chromium", "chromium-browser"], install_hint="apt-get install chromium")


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium driven by Playwright (no browser download: the system one)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in the test extra
        missing("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            launched.close()
