"""The key-hierarchy explorer model and its widget, driven the way a reader drives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.kms.explorer import ACTIONS, KeyHierarchyExplorer
from patterns.widgets.kms import KmsExplorerView


def readable(explorer: KeyHierarchyExplorer) -> list[bool]:
    return [row.readable for row in explorer.rows()]


def test_actions_change_what_can_be_read(tmp_path: Path) -> None:
    explorer = KeyHierarchyExplorer(tmp_path)
    assert readable(explorer) == [True, True, True]
    explorer.act("rotate")
    assert [row.key_version for row in explorer.rows()] == [1, 1, 1]
    explorer.act("disable")
    assert readable(explorer) == [False, False, False]
    assert "refused" in explorer.act("rewrap_all")
    explorer.act("enable")
    explorer.act("rewrap_all")
    assert [row.key_version for row in explorer.rows()] == [2, 2, 2]
    explorer.act("destroy")
    assert readable(explorer) == [False, False, False]
    assert "refused" in explorer.act("enable")
    assert "audit log OK" in explorer.summary()
    with pytest.raises(ValueError, match="unknown action"):
        explorer.act("explode")


def test_widget_buttons_drive_the_model_and_show_no_secret(tmp_path: Path) -> None:
    view = KmsExplorerView(KeyHierarchyExplorer(tmp_path))
    assert set(view.buttons) == set(ACTIONS)
    text = view.click("disable")
    assert "DISABLED" in text
    assert "NO (KmsError)" in text
    assert "sk-ant-" not in view.panel.value
    assert "sk-ant-" not in text
    assert "readable" in view.click("enable")
