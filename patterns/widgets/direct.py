"""Notebook 01's widgets: a configurable security warning and a usage meter.

Thin views: the wording comes from :func:`patterns.direct.warning_content` and the numbers
from :class:`patterns.direct.UsageMeter`, so what a reader sees is what the tested code
decides. No key is typed into either widget.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from patterns.direct import UsageMeter, WarningConfig, warning_content

__all__ = ["SecurityWarningPanel", "UsageMeterView", "warning_html"]


def warning_html(config: WarningConfig) -> str:
    """The warning as the app should show it (escaped: the app name is user input)."""
    verdict, points = warning_content(config)
    items = "".join(f"<li>{html.escape(point)}</li>" for point in points)
    colour = "#c00000" if config.audience == "public" else "#b35c00"
    return (
        f'<div style="border:2px solid {colour};padding:0.5em 1em;border-radius:6px">'
        f"<h4>⚠️ {html.escape(config.app_name)}: your key is in this browser</h4>"
        f"<p>{html.escape(verdict)}</p><ul>{items}</ul></div>"
    )


class SecurityWarningPanel:
    """Controls for the app's situation and the warning they produce. ``widget`` is what to
    display; set the controls from code and read :meth:`summary` to drive it in a test."""

    def __init__(self, config: WarningConfig | None = None) -> None:
        config = config or WarningConfig()
        self.app_name = widgets.Text(value=config.app_name, description="App name")
        self.storage = widgets.Dropdown(
            options=["memory", "sessionStorage", "localStorage"],
            value=config.storage,
            description="Key kept in",
        )
        self.audience = widgets.Dropdown(
            options=["personal", "internal", "public"],
            value=config.audience,
            description="Audience",
        )
        self.dedicated = widgets.Checkbox(value=config.dedicated_key, description="dedicated key")
        self.spend_limit = widgets.BoundedFloatText(
            value=config.spend_limit_usd or 0.0,
            min=0.0,
            max=100_000.0,
            description="Limit (USD)",
        )
        self.output = widgets.HTML()
        controls = (self.app_name, self.storage, self.audience, self.dedicated, self.spend_limit)
        for control in controls:
            control.observe(self._refresh, names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:3]), widgets.HBox(controls[3:]), self.output]
        )
        self._refresh()

    def config(self) -> WarningConfig:
        limit = float(self.spend_limit.value)
        return WarningConfig(
            app_name=str(self.app_name.value) or "My app",
            storage=self.storage.value,
            audience=self.audience.value,
            dedicated_key=bool(self.dedicated.value),
            spend_limit_usd=limit if limit > 0 else None,
        )

    def _refresh(self, _change: Any = None) -> None:
        self.output.value = warning_html(self.config())

    def summary(self) -> str:
        verdict, points = warning_content(self.config())
        return "\n".join([verdict, *[f"- {point}" for point in points]])


class UsageMeterView:
    """One progress bar per rate limit, fed by a response's ``anthropic-ratelimit-*``."""

    def __init__(self, meter: UsageMeter | None = None) -> None:
        self.meter = meter or UsageMeter()
        self.bars = {
            kind: widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=kind)
            for kind in UsageMeter.KINDS
        }
        self.text = widgets.HTML()
        self.widget = widgets.VBox([*self.bars.values(), self.text])

    def update(self, headers: Mapping[str, str]) -> None:
        self.meter.update(headers)
        for kind, reading in self.meter.readings.items():
            self.bars[kind].value = reading.used_fraction
            self.bars[kind].bar_style = "danger" if reading.used_fraction > 0.8 else "info"
        self.text.value = f"<pre>{html.escape(self.meter.summary())}</pre>"

    def summary(self) -> str:
        return self.meter.summary()
