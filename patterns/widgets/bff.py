"""Notebook 05's widget: switch the BFF's defences off and see which attack then succeeds.

A thin view over :func:`patterns.bff.lab.run_attacks`: each run starts a real BFF with the
chosen defences and plays every attack over HTTP; the widget only draws the results.
"""

from __future__ import annotations

import dataclasses
import html

import ipywidgets as widgets
from IPython.display import display

from patterns.bff.lab import ATTACKS, AttackResult, run_attacks
from patterns.bff.settings import Defences
from patterns.keys import ApiKey

__all__ = ["DefenceLab", "results_html"]

_LABELS = {
    "http_only_cookie": "HttpOnly cookie",
    "csrf_token": "CSRF token",
    "origin_check": "Origin check",
    "server_side_logout": "server-side logout",
    "request_validation": "request validation",
    "rate_limit": "per-user rate limit",
}


def results_html(results: list[AttackResult]) -> str:
    rows = []
    for result in results:
        colour = "#b00020" if result.succeeded else "#1b5e20"
        verdict = "SUCCEEDED" if result.succeeded else "blocked"
        rows.append(
            f"<tr><td style='color:{colour};font-weight:bold'>{verdict}</td>"
            f"<td>{html.escape(result.name)}</td><td>{html.escape(result.detail)}</td>"
            f"<td>{html.escape(ATTACKS[result.name])}</td></tr>"
        )
    head = "<tr><th>result</th><th>attack</th><th>what happened</th><th>stopped by</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


class DefenceLab:
    """One checkbox per defence; every change re-runs all attacks against a fresh BFF."""

    def __init__(self, upstream_url: str, victim_key: ApiKey) -> None:
        self._upstream = upstream_url
        self._key = victim_key
        self.boxes = {
            name: widgets.Checkbox(value=True, description=label, indent=False)
            for name, label in _LABELS.items()
        }
        for box in self.boxes.values():
            box.observe(self._refresh, names="value")
        self.table = widgets.HTML()
        self.view = widgets.VBox(
            [
                widgets.HTML("<b>Defences on</b>"),
                widgets.HBox(list(self.boxes.values())),
                self.table,
            ]
        )
        self.results: list[AttackResult] = []
        self._refresh()

    @property
    def defences(self) -> Defences:
        return dataclasses.replace(
            Defences(), **{name: box.value for name, box in self.boxes.items()}
        )

    def set(self, **switches: bool) -> list[AttackResult]:
        """Turn defences on (True) or off (False) from code; returns the new results."""
        for name in self.boxes:
            self.boxes[name].unobserve(self._refresh, names="value")
        try:
            for name, value in switches.items():
                self.boxes[name].value = value
        finally:
            for name in self.boxes:
                self.boxes[name].observe(self._refresh, names="value")
        return self._refresh()

    def _refresh(self, _change: object = None) -> list[AttackResult]:
        self.results = run_attacks(self._upstream, self._key, self.defences)
        self.table.value = results_html(self.results)
        return self.results

    def summary(self) -> str:
        return "\n".join(result.as_row() for result in self.results)

    def _ipython_display_(self) -> None:
        display(self.view)  # type: ignore[no-untyped-call]
