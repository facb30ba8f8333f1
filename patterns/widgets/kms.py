"""A key-hierarchy explorer: buttons to rotate, rewrap, disable, enable and destroy a tenant's
customer key, and a live view of which users' sealed API keys can still be read.

A thin view over :class:`patterns.kms.explorer.KeyHierarchyExplorer`: each button calls
``explorer.act(...)`` and redraws ``explorer.summary()``. No key is ever typed in here.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from patterns.kms.explorer import ACTIONS, KeyHierarchyExplorer

__all__ = ["KmsExplorerView"]

_LABELS = {
    "rotate": "Rotate key",
    "rewrap_all": "Rewrap all",
    "disable": "Disable key",
    "enable": "Enable key",
    "destroy": "Destroy key",
}


class KmsExplorerView:
    """Buttons plus a summary panel; ``click(action)`` drives it from code (for tests)."""

    def __init__(self, explorer: KeyHierarchyExplorer) -> None:
        self.explorer = explorer
        self.buttons: dict[str, Any] = {}
        for action in ACTIONS:
            button = widgets.Button(
                description=_LABELS[action],
                button_style="danger" if action == "destroy" else "",
            )
            button.on_click(lambda _button, chosen=action: self._run(chosen))
            self.buttons[action] = button
        self.last_result = "ready"
        self.panel = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox(list(self.buttons.values())), self.panel])
        self._render()

    def _run(self, action: str) -> None:
        self.last_result = self.explorer.act(action)
        self._render()

    def _render(self) -> None:
        self.text = f"{self.last_result}\n{self.explorer.summary()}"
        self.panel.value = f"<pre>{html.escape(self.text)}</pre>"

    def click(self, action: str) -> str:
        """Press the button for ``action``, as a reader would; return the panel's text."""
        self.buttons[action].click()
        return self.text
