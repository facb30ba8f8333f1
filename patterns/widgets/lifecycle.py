"""Notebook 07's checklist: a checkbox per item, grouped by phase, and an export button that
shows the Markdown report (and writes it to a file when a path is given).

A thin view over :mod:`patterns.lifecycle.checklist`: the items, the counts and the report
come from there. Nothing here asks for a key; checkbox values are not secrets, and
``tools/execute_notebooks.py`` saves no widget state anyway.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from patterns.errors import ConfigurationError
from patterns.lifecycle.checklist import (
    ITEMS,
    PHASES,
    find_item,
    progress,
    render_markdown,
    write_markdown,
)

__all__ = ["ChecklistView"]


class ChecklistView:
    """Checkboxes, a progress line and an export button; ``tick`` and ``export`` drive it
    from code the way a reader's clicks would."""

    def __init__(self, *, path: str | os.PathLike[str] | None = None, team: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.team = team
        self.boxes: dict[str, Any] = {}
        rows: list[Any] = []
        for phase in PHASES:
            rows.append(widgets.HTML(f"<b>{html.escape(phase.capitalize())}</b>"))
            for item in ITEMS:
                if item.phase == phase:
                    # The text goes in an HTML label beside the box: a Checkbox's own
                    # description is cut with an ellipsis when it is longer than one line.
                    box = widgets.Checkbox(
                        value=False, indent=False, layout=widgets.Layout(width="2em")
                    )
                    box.observe(self._update_progress, names="value")
                    self.boxes[item.id] = box
                    label = widgets.HTML(
                        f"{html.escape(item.text)}<br><small>{html.escape(item.how)}</small>",
                        layout=widgets.Layout(width="56em"),
                    )
                    rows.append(widgets.HBox([box, label]))
        self.progress = widgets.HTML()
        self.button = widgets.Button(description="Export as Markdown", icon="download")
        self.button.on_click(lambda _button: self._export())
        self.report = widgets.HTML()
        self.markdown = ""
        self.view = widgets.VBox([*rows, self.progress, self.button, self.report])
        self._update_progress()

    def ticked(self) -> list[str]:
        """The ids of the ticked items, in checklist order."""
        return [item_id for item_id, box in self.boxes.items() if box.value]

    def tick(self, *item_ids: str, value: bool = True) -> None:
        """Tick (or with ``value=False`` untick) items by id; unknown ids are refused."""
        for item_id in item_ids:
            find_item(item_id)
        for item_id in item_ids:
            self.boxes[item_id].value = value

    def export(self) -> str:
        """Press the export button; return the Markdown it produced."""
        self.button.click()
        return self.markdown

    def _update_progress(self, _change: object = None) -> None:
        counts = progress(self.ticked())
        parts = [f"{phase}: {done}/{total}" for phase, (done, total) in counts.items()]
        self.progress.value = html.escape(" · ".join(parts))

    def _export(self) -> None:
        self.markdown = render_markdown(self.ticked(), team=self.team)
        written = ""
        if self.path is not None:
            try:
                write_markdown(self.path, self.ticked(), team=self.team)
            except (ConfigurationError, OSError) as error:  # a click must not raise
                reason = error.strerror if isinstance(error, OSError) else str(error)
                written = f"<p>not written: {html.escape(str(reason))}</p>"
            else:
                written = f"<p>written to {html.escape(str(self.path))}</p>"
        self.report.value = f"{written}<pre>{html.escape(self.markdown)}</pre>"

    def _ipython_display_(self) -> None:
        display(self.view)  # type: ignore[no-untyped-call]
