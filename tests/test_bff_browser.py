"""The BFF's demo page in a real headless Chromium: sign in, store a key, stream a reply.

Chromium accepts the ``Secure`` ``__Host-session`` cookie on ``http://127.0.0.1`` (a
potentially trustworthy origin). The test proves both halves: the browser *holds* the cookie
(``context.cookies()`` lists it, HttpOnly) and the page's script *cannot read it*
(``document.cookie`` is empty). It then searches the DOM, both storages and every response
the page received for the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from patterns.bff import COOKIE_NAME, BffSettings, UserDirectory, create_app
from patterns.keys import canary_key
from patterns.serving import BackgroundServer
from patterns.upstream import UpstreamSettings
from patterns.upstream import create_app as create_upstream

KEY = canary_key()
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def bff() -> Iterator[BackgroundServer]:
    users = UserDirectory()
    users.add("alice", PASSWORD)
    upstream_app = create_upstream(UpstreamSettings(api_keys=(KEY,), stream_delay=0.02))
    with BackgroundServer(upstream_app) as upstream:
        app = create_app(BffSettings(upstream_url=upstream.url), users=users)
        with BackgroundServer(app) as server:
            yield server


def test_the_demo_page_signs_in_stores_a_key_and_streams(
    browser: Any, bff: BackgroundServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    bodies: list[str] = []
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    def keep(response: Any) -> None:
        try:
            bodies.append(response.text())
        except Exception:
            bodies.append("")
        bodies.append(str(response.headers))

    page.on("response", keep)
    try:
        page.goto(bff.url + "/")
        page.wait_for_selector("#signin:not([hidden])")
        page.fill("#username", "alice")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_selector("#account:not([hidden])")

        page.fill("#api-key", KEY.reveal())
        page.click("#save-key")
        page.wait_for_selector(f"#fingerprint:text('{KEY.fingerprint}')")
        assert page.input_value("#api-key") == ""

        page.fill("#prompt", "Write a short poem")
        page.click("#send")
        page.wait_for_selector("#reply[data-done='true']", timeout=15_000)
        assert page.text_content("#reply")
        assert int(page.get_attribute("#reply", "data-chunks") or 0) > 1  # streamed, not buffered
        page.wait_for_selector("#usage:text('1 requests')")

        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies[COOKIE_NAME]["httpOnly"] is True
        assert cookies[COOKIE_NAME]["secure"] is True
        assert cookies[COOKIE_NAME]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # what an injected script would get

        storage = page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
        )
        everything = "\n".join([page.content(), storage, *bodies, *console])
        assert KEY.fingerprint in everything
        assert KEY.reveal() not in everything

        page.click("#logout")
        page.wait_for_selector("#signin:not([hidden])")
        assert COOKIE_NAME not in {c["name"] for c in context.cookies()}
    finally:
        context.close()
