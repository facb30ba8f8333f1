"""A live timeline of a session key's idle and absolute deadlines (notebook 03).

A thin view over :class:`patterns.session_keys.timeline.SessionTimeline`: buttons enter a
demo key, make an API call ("activity"), fast-forward the fake clock and log out; the panel
draws the deadlines as an SVG timeline and lists the events, including the expiry callback
asking the user to enter their key again. No key is ever typed in here: the key is a demo
key, and a real one belongs in :func:`patterns.keys.prompt_for_key`, never in a widget.
"""

from __future__ import annotations

import html
from typing import Any, Final

import ipywidgets as widgets

from patterns.session_keys.timeline import PRESETS, SessionTimeline, clock_text

__all__ = ["SessionTimelineView", "timeline_svg"]

_STEPS: Final = {"+1 min": 60.0, "+5 min": 300.0, "+15 min": 900.0, "+1 h": 3600.0, "+4 h": 14400.0}
_WIDTH: Final = 640
_LEFT: Final = 10
_RIGHT: Final = 20


def _line(x: float, colour: str, label: str, *, dashed: bool = False, row: int = 0) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    y = 14 + 12 * row
    return (
        f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="78" stroke="{colour}"{dash}/>'
        f'<text x="{x + 3:.1f}" y="{y}" font-size="11" fill="{colour}">{label}</text>'
    )


def timeline_svg(timeline: SessionTimeline) -> str:
    """Draw held periods (green), activity (blue ticks), expiries (red crosses), the current
    idle (orange, dashed) and absolute (red) deadlines and the clock (black) as SVG."""
    deadlines = timeline.manager.deadlines()
    ends = [timeline.now, 600.0]
    if deadlines is not None:
        ends += [deadlines.idle] + ([deadlines.absolute] if deadlines.absolute is not None else [])
    span = max(ends) * 1.05

    def x(at: float) -> float:
        return _LEFT + (_WIDTH - _LEFT - _RIGHT) * at / span

    parts = [f'<line x1="{_LEFT}" y1="78" x2="{_WIDTH - _RIGHT}" y2="78" stroke="#888"/>']
    for start, end in timeline.held:
        stop = timeline.now if end is None else end
        parts.append(
            f'<rect x="{x(start):.1f}" y="46" width="{max(x(stop) - x(start), 1):.1f}" '
            'height="18" fill="#9be29b"><title>key in memory</title></rect>'
        )
    for event in timeline.events:
        if event.kind == "activity":
            parts.append(
                f'<line x1="{x(event.at):.1f}" y1="42" x2="{x(event.at):.1f}" '
                'y2="68" stroke="#2060d0"/>'
            )
        elif event.kind == "expired":
            parts.append(
                f'<text x="{x(event.at) - 5:.1f}" y="60" font-size="16" fill="#c00000">✕</text>'
            )
    if deadlines is not None:
        parts.append(_line(x(deadlines.idle), "#e08000", "idle", dashed=True, row=1))
        if deadlines.absolute is not None:
            parts.append(_line(x(deadlines.absolute), "#c00000", "absolute", row=2))
    parts.append(_line(x(timeline.now), "#000000", "now"))
    parts.append(f'<text x="{_LEFT}" y="94" font-size="11">0:00:00</text>')
    parts.append(
        f'<text x="{_WIDTH - _RIGHT - 50}" y="94" font-size="11">{clock_text(span)}</text>'
    )
    body = "".join(parts)
    return f'<svg width="{_WIDTH}" height="100" xmlns="http://www.w3.org/2000/svg">{body}</svg>'


class SessionTimelineView:
    """Controls plus the timeline panel. ``widget`` is what to display; the buttons can be
    pressed from code (``view.activity_button.click()``) so a notebook can drive it."""

    def __init__(self, preset: str = next(iter(PRESETS))) -> None:
        self.preset = widgets.Dropdown(options=list(PRESETS), value=preset, description="timeouts")
        self.step = widgets.Dropdown(options=_STEPS, value=300.0, description="idle for")
        self.enter_button = widgets.Button(description="Enter demo key", button_style="success")
        self.activity_button = widgets.Button(description="Activity (API call)")
        self.forward_button = widgets.Button(description="Fast-forward ⏩")
        self.logout_button = widgets.Button(description="Log out", button_style="warning")
        self.banner = widgets.HTML()
        self.chart = widgets.HTML()
        self.log = widgets.HTML()
        self.timeline = SessionTimeline(*PRESETS[preset])
        self.text = ""

        self.preset.observe(self._reset, names="value")
        self.enter_button.on_click(lambda _b: self._do(self.timeline.enter_key))
        self.activity_button.on_click(lambda _b: self._do(self.timeline.activity))
        self.forward_button.on_click(
            lambda _b: self._do(lambda: self.timeline.fast_forward(float(self.step.value)))
        )
        self.logout_button.on_click(lambda _b: self._do(self.timeline.logout))
        buttons = [self.enter_button, self.activity_button, self.logout_button]
        self.widget = widgets.VBox(
            [
                self.preset,
                widgets.HBox(buttons),
                widgets.HBox([self.step, self.forward_button]),
                self.banner,
                self.chart,
                self.log,
            ]
        )
        self._render()

    def _reset(self, _change: Any = None) -> None:
        self.timeline.manager.close()
        self.timeline = SessionTimeline(*PRESETS[str(self.preset.value)])
        self._render()

    def _do(self, action: Any) -> None:
        action()
        self._render()

    def _render(self) -> None:
        self.text = self.timeline.summary(last=8)
        prompt = self.timeline.prompt
        self.banner.value = (
            f'<b style="color:#c00000">🔒 {html.escape(prompt)}</b>' if prompt else ""
        )
        self.chart.value = timeline_svg(self.timeline)
        self.log.value = f"<pre>{html.escape(self.text)}</pre>"
