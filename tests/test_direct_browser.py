"""The static page in a real headless Chromium, calling the stand-in cross-origin.

The page is served from one loopback server and the stand-in from another, so the browser
applies real CORS: a preflight, then the call, then the check of the answer's
``Access-Control-Allow-Origin``. With the dangerous header the page reads the reply; without
it the API answers 401 without CORS headers and the page only sees a network error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from patterns.direct import WEB_DIR, create_page_app
from patterns.keys import ApiKey, canary_key
from patterns.models import FALLBACK_MODEL
from patterns.serving import BackgroundServer
from patterns.upstream import CORS_REJECTION, UpstreamSettings, controls_of, create_app


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[BackgroundServer, BackgroundServer, ApiKey]]:
    key = canary_key()
    api = create_app(UpstreamSettings(api_keys=(key,)))
    with BackgroundServer(api) as upstream, BackgroundServer(create_page_app()) as pages:
        yield upstream, pages, key


@pytest.fixture
def page(browser: Any, servers: tuple[BackgroundServer, BackgroundServer, ApiKey]) -> Iterator[Any]:
    upstream, pages, key = servers
    context = browser.new_context()
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    tab.goto(f"{pages.url}/direct-call.html?api={upstream.url}")
    tab.wait_for_selector("body[data-ready='true']", timeout=15_000)
    yield tab
    assert key.reveal() not in tab.url
    assert not any(key.reveal() in line for line in console)
    context.close()


def send(tab: Any, key: ApiKey, *, dangerous: bool, remember: bool = False) -> tuple[str, str]:
    tab.fill("#key", key.reveal())
    tab.set_checked("#dangerous", dangerous)
    tab.set_checked("#remember", remember)
    tab.click("#send")
    # A selector, not wait_for_function: a string predicate is polled with eval() inside the
    # page, which the page's strict CSP (script-src 'self') rightly refuses.
    done = ", ".join(f"#result[data-state='{state}']" for state in ("ok", "blocked", "error"))
    tab.wait_for_selector(done, timeout=15_000)
    return tab.get_attribute("#result", "data-state"), tab.text_content("#result")


def test_call_succeeds_with_the_dangerous_header(page: Any, servers: Any) -> None:
    upstream, _, key = servers
    state, text = send(page, key, dangerous=True)
    assert state == "ok", text
    assert text.strip()
    last = controls_of(upstream.app).request_log.last()
    assert last.status == 200
    assert last.origin is not None
    assert page.evaluate("localStorage.length") == 0  # in memory only by default


def test_call_is_blocked_without_it(page: Any, servers: Any) -> None:
    upstream, _, key = servers
    state, text = send(page, key, dangerous=False)
    assert state == "blocked", text
    records = controls_of(upstream.app).request_log.entries()[-2:]
    assert [(r.method, r.status) for r in records] == [("OPTIONS", 200), ("POST", 401)]
    assert CORS_REJECTION not in text  # the page cannot even read why


def test_any_script_on_the_page_can_read_the_key(page: Any, servers: Any) -> None:
    """What an XSS payload does: read the field now, and storage later."""
    _, _, key = servers
    send(page, key, dangerous=True, remember=True)
    from_field = page.evaluate("document.querySelector('#key').value")
    from_storage = page.evaluate("Object.values(localStorage).join(' ')")
    assert from_field == key.reveal()
    assert key.reveal() in from_storage
    page.click("#forget")
    assert page.evaluate("localStorage.length") == 0


def test_the_script_pins_the_default_model_and_never_logs() -> None:
    script = (WEB_DIR / "direct-call.js").read_text(encoding="utf-8")
    fallback = re.search(r'get\("model"\) \|\| "([^"]+)"', script)
    assert fallback is not None
    assert fallback.group(1) == FALLBACK_MODEL
    assert "console.log" not in script


def test_page_app_serves_only_direct_files(servers: Any) -> None:
    import httpx

    _, pages, _ = servers
    ok = httpx.get(f"{pages.url}/direct-call.html")
    assert ok.status_code == 200
    assert "script-src 'self'" in ok.headers["content-security-policy"]
    assert httpx.get(f"{pages.url}/encrypted-storage.js").status_code == 404
