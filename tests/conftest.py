"""Shared fixtures. Tests run offline: a real key or base URL in the environment is removed
so that no test (and no notebook kernel started by nbval) can reach the real API."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from patterns.serving import free_port
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
    """A throwaway redis-server on a free loopback port, without persistence; yields its URL."""
    binary = require_binary(["redis-server"], install_hint="apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied before each test."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
