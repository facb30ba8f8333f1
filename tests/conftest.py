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


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium driven by Playwright (no browser download: the system one).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and any later test calling ``asyncio.run()`` would then fail.
    """
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


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, without persistence; yields its URL.
    Fails (never skips under CI=true) when it is missing or does not start."""
    from tests import servers  # imported here: it loads the stand-in's app

    with servers.own_redis("--appendonly", "no") as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied before each test."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
