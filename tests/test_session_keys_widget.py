"""Notebook 03's timeline: the simulation it draws and the widget's wiring."""

from __future__ import annotations

import ipywidgets as widgets

from patterns.keys import canary_key
from patterns.session_keys.timeline import PRESETS, REENTER_PROMPT, SessionTimeline, clock_text
from patterns.widgets.session_keys import SessionTimelineView, timeline_svg

LOW, HIGH, UNCAPPED = list(PRESETS)


def test_clock_text() -> None:
    assert clock_text(0) == "0:00:00"
    assert clock_text(3725.4) == "1:02:05"


def test_fast_forward_stops_at_the_idle_deadline_and_the_callback_prompts() -> None:
    timeline = SessionTimeline(*PRESETS[HIGH])
    timeline.enter_key()
    timeline.fast_forward(120)
    assert timeline.activity()
    timeline.fast_forward(3 * 3600)
    expired = [event for event in timeline.events if event.kind == "expired"]
    assert [(event.at, "idle timeout" in event.text) for event in expired] == [(420, True)]
    assert timeline.prompt == REENTER_PROMPT
    assert not timeline.activity()
    assert timeline.events[-1].kind == "refused"
    assert timeline.held == [(0, 420)]
    assert "no key in memory" in timeline.status()


def test_a_busy_session_ends_at_the_absolute_deadline() -> None:
    timeline = SessionTimeline(*PRESETS[HIGH])
    timeline.enter_key()
    while timeline.activity():
        timeline.fast_forward(240)
    expired = [event for event in timeline.events if event.kind == "expired"]
    assert [(event.at, "absolute timeout" in event.text) for event in expired] == [(14400, True)]


def test_without_a_cap_a_busy_session_never_ends() -> None:
    timeline = SessionTimeline(*PRESETS[UNCAPPED])
    timeline.enter_key()
    for _ in range(100):
        timeline.fast_forward(1700)
        assert timeline.activity()
    assert "idle deadline" in timeline.status()


def test_logout_wipes_without_a_prompt() -> None:
    timeline = SessionTimeline()
    timeline.logout()
    timeline.enter_key()
    timeline.fast_forward(60)
    timeline.logout()
    assert [event.kind for event in timeline.events] == ["logout", "set", "logout"]
    assert timeline.prompt is None
    assert timeline.held == [(0, 60)]


def test_view_buttons_drive_the_timeline_and_the_panels() -> None:
    view = SessionTimelineView(HIGH)
    view.enter_button.click()
    view.step.value = 900.0
    view.forward_button.click()
    assert REENTER_PROMPT in view.banner.value
    assert "0:05:00  key sha256:" in view.text
    assert "✕" in view.chart.value
    view.activity_button.click()
    assert "refused" in view.text
    view.enter_button.click()
    assert view.banner.value == ""
    view.preset.value = LOW  # a new preset starts a new session
    assert view.timeline.events == []
    assert view.timeline.manager.idle_timeout == 1800


def test_no_key_reaches_any_panel_and_no_password_box_exists() -> None:
    key = canary_key()
    view = SessionTimelineView()
    view.timeline.enter_key(key)
    view.activity_button.click()
    view.forward_button.click()
    view.step.value = 14400.0
    view.forward_button.click()
    shown = [
        view.text,
        view.banner.value,
        view.chart.value,
        view.log.value,
        timeline_svg(view.timeline),
    ]
    for text in shown:
        assert key.reveal() not in text
        assert key.fingerprint in view.text

    def walk(widget: widgets.Widget) -> list[widgets.Widget]:
        children = getattr(widget, "children", ())
        return [widget, *(w for child in children for w in walk(child))]

    assert not any(isinstance(w, widgets.Password) for w in walk(view.widget))
