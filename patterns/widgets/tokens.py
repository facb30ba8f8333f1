"""Notebook 06's widget: TTL and max-uses sliders against a simulated client and attacker.

A thin view over :func:`patterns.tokens.simulation.simulate_leak`: the numbers and the plot
come from the simulation; the widget only draws them (matplotlib, into an ``Image``).
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from patterns.tokens.simulation import ExposureReport, simulate_leak

__all__ = ["LeakExplorer", "plot_report"]


def plot_report(report: ExposureReport, *, leak_at: float | None) -> bytes:
    """A PNG of cumulative calls over the token's life, for the client and the attacker."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.add_subplot()
    for times, label, colour in (
        (report.client_times, "client", "tab:blue"),
        (report.attacker_times, "attacker", "tab:red"),
    ):
        if times:
            axes.step([0.0, *times], range(len(times) + 1), where="post", label=label, color=colour)
    if leak_at is not None:
        axes.axvline(leak_at, color="tab:red", linestyle=":", label="leak")
    axes.axvline(report.ttl, color="black", linestyle="--", label="expiry")
    axes.axhline(report.max_uses, color="grey", linestyle="-.", linewidth=0.8, label="max uses")
    axes.set_xlabel("minutes since the token was minted")
    axes.set_ylabel("calls served")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class LeakExplorer:
    """Sliders for the token's limits and the scenario; a summary and a plot that follow."""

    def __init__(self) -> None:
        def slider(description: str, value: float, low: float, high: float, step: float) -> Any:
            kind = widgets.IntSlider if float(step).is_integer() else widgets.FloatSlider
            return kind(
                value=value,
                min=low,
                max=high,
                step=step,
                description=description,
                style={"description_width": "14em"},
                layout=widgets.Layout(width="34em"),
                continuous_update=False,
            )

        self.controls = {
            "ttl": slider("token lifetime (min)", 15, 1, 60, 1),
            "max_uses": slider("max uses", 100, 1, 500, 1),
            "client_rate": slider("client calls per minute", 4, 1, 30, 1),
            "leak_at": slider("leak after (min)", 5, 0, 60, 1),
            "attacker_rate": slider("attacker calls per minute", 60, 1, 600, 1),
        }
        self.summary = widgets.HTML()
        self.plot = widgets.Image(format="png")
        for control in self.controls.values():
            control.observe(self._refresh, names="value")
        self.view = widgets.VBox([*self.controls.values(), self.summary, self.plot])
        self.report = self._refresh()

    def set(self, **values: float) -> ExposureReport:
        """Move sliders from code; returns the new report."""
        for name, value in values.items():
            self.controls[name].value = value
        return self.report

    def _refresh(self, _change: object = None) -> ExposureReport:
        values = {name: control.value for name, control in self.controls.items()}
        report = simulate_leak(**values)
        self.report = report
        self.summary.value = "<pre>" + report.as_text() + "</pre>"
        self.plot.value = plot_report(report, leak_at=values["leak_at"])
        return report

    def _ipython_display_(self) -> None:
        display(self.view)  # type: ignore[no-untyped-call]
