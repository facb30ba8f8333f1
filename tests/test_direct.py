"""patterns.direct against the stand-in: the browser's request, CORS, exposure, warnings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patterns.direct import (
    EXPOSURES,
    BrowserPage,
    UsageMeter,
    WarningConfig,
    browser_request,
    check_browser_headers,
    injected_script,
    send_as_browser,
    warning_content,
)
from patterns.keys import ApiKey, canary_key
from patterns.serving import BackgroundServer
from patterns.upstream import CORS_REJECTION, UpstreamSettings, create_app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, ApiKey]]:
    key = canary_key()
    with BackgroundServer(create_app(UpstreamSettings(api_keys=(key,)))) as server:
        yield server.url, key


def test_request_shows_the_dangerous_header_and_hides_the_key(
    upstream: tuple[str, ApiKey],
) -> None:
    url, key = upstream
    request = browser_request(key, "hi", base_url=url)
    shown = request.render() + repr(request)
    assert "anthropic-dangerous-direct-browser-access: true" in shown
    assert "origin: http://localhost:8000" in shown
    assert key.reveal() not in shown
    assert key.fingerprint in shown
    assert request.wire_headers()["x-api-key"] == key.reveal()


def test_with_the_header_the_page_reads_the_reply(upstream: tuple[str, ApiKey]) -> None:
    url, key = upstream
    outcome = send_as_browser(browser_request(key, "hi", base_url=url))
    assert outcome.preflight_status == 200
    assert outcome.status == 200
    assert outcome.readable
    assert outcome.reply
    assert key.reveal() not in outcome.summary()


def test_without_it_the_api_refuses_like_the_real_one(upstream: tuple[str, ApiKey]) -> None:
    url, key = upstream
    outcome = send_as_browser(browser_request(key, "hi", base_url=url, dangerous_header=False))
    assert outcome.status == 401
    assert not outcome.readable
    assert outcome.error_type == "authentication_error"
    assert outcome.error_message == CORS_REJECTION
    assert "access-control-allow-origin" not in outcome.headers


def test_check_browser_headers() -> None:
    key = canary_key()
    good = {
        "content-type": "application/json",
        "x-api-key": key.reveal(),
        "anthropic-version": "2023-06-01",
        "anthropic-dangerous-direct-browser-access": "true",
    }
    assert check_browser_headers(good) == []
    problems = check_browser_headers({**good, "anthropic-dangerous-direct-browser-access": "1"})
    assert len(problems) == 1
    assert all(key.reveal() not in p for p in check_browser_headers({"x-api-key": "nope"}))


def test_injected_script_finds_keys_everywhere_a_page_keeps_them() -> None:
    key = canary_key()
    page = BrowserPage(
        local_storage={"apiKey": key.reveal()},
        globals={"state": f'{{"key": "{key.reveal()}"}}'},
        inputs={"#key": key.reveal()},
    )
    page.outgoing.append(browser_request(key, "hi", base_url="https://api.example"))
    stolen = injected_script(page)
    assert [place.split(".")[0] for place, _ in stolen][:3] == ["localStorage", "window", "input"]
    assert all(found == key for _, found in stolen)
    assert key.reveal() not in repr(stolen)
    assert injected_script(BrowserPage()) == []


def test_warning_content_follows_the_configuration() -> None:
    verdict, points = warning_content(WarningConfig())
    assert "straight to Anthropic" in verdict
    assert len(points) == 3
    risky = WarningConfig(
        audience="public", storage="localStorage", dedicated_key=False, spend_limit_usd=None
    )
    verdict, points = warning_content(risky)
    assert verdict.startswith("Not acceptable for a public app")
    assert any("localStorage" in p for p in points)
    assert any("main key" in p for p in points)
    assert any("No spend limit" in p for p in points)
    assert len(EXPOSURES) == 5


def test_usage_meter_reads_rate_limit_headers() -> None:
    meter = UsageMeter()
    assert meter.summary() == "no usage headers seen yet"
    meter.update(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "40",
            "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:12Z",
        }
    )
    assert meter.readings["requests"].used_fraction == pytest.approx(0.2)
    assert "10 of     50 used (20%), full again at 00:00:12" in meter.summary()


def test_widgets_are_thin_views_driven_from_code() -> None:
    from patterns.widgets.direct import SecurityWarningPanel, UsageMeterView

    panel = SecurityWarningPanel()
    assert panel.summary() == "\n".join(
        [warning_content(WarningConfig())[0]]
        + [f"- {p}" for p in warning_content(WarningConfig())[1]]
    )
    panel.app_name.value = "<script>alert(1)</script>"
    panel.audience.value = "public"
    assert "Not acceptable" in panel.summary()
    assert "<script>" not in panel.output.value  # escaped
    view = UsageMeterView()
    view.update(
        {
            "anthropic-ratelimit-output-tokens-limit": "100",
            "anthropic-ratelimit-output-tokens-remaining": "10",
        }
    )
    assert view.bars["output-tokens"].value == pytest.approx(0.9)
    assert view.bars["output-tokens"].bar_style == "danger"


def test_a_readable_error_says_so(upstream: tuple[str, ApiKey]) -> None:
    url, key = upstream
    outcome = send_as_browser(
        browser_request(key, "hi", base_url=url, model="claude-3-haiku-20240307")
    )
    assert outcome.status == 404
    assert outcome.readable
    assert outcome.summary().endswith("the page can read it")
