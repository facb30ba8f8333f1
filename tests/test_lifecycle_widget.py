"""Notebook 07's checklist widget, clicked the way a reader clicks it."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from patterns.errors import ConfigurationError
from patterns.lifecycle.checklist import ITEMS, render_markdown
from patterns.widgets.lifecycle import ChecklistView


def test_boxes_follow_the_items_and_the_progress_line_follows_the_boxes() -> None:
    view = ChecklistView()
    assert list(view.boxes) == [item.id for item in ITEMS]
    assert "before launch: 0/6" in view.progress.value
    view.boxes["scanning"].value = True  # a reader's click
    view.tick("contain")
    assert view.ticked() == ["scanning", "contain"]
    assert "before launch: 1/6" in view.progress.value
    assert "after an incident: 1/6" in view.progress.value
    view.tick("contain", value=False)
    assert view.ticked() == ["scanning"]
    with pytest.raises(ConfigurationError):
        view.tick("scanning", "typo")
    assert view.ticked() == ["scanning"]  # nothing changed by a refused call


def test_export_shows_the_report_and_writes_it_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "team-checklist.md"
    view = ChecklistView(path=target, team="Payments <ops>")
    view.tick("scanning", "redaction")
    markdown = view.export()
    assert markdown == render_markdown(["scanning", "redaction"], team="Payments <ops>")
    assert target.read_text(encoding="utf-8") == markdown
    assert "written to" in view.report.value
    assert "Payments &lt;ops&gt;" in view.report.value  # escaped in the HTML widget
    assert "<ops>" not in view.report.value


def test_a_failed_write_is_shown_not_raised(tmp_path: Path) -> None:
    view = ChecklistView(path=tmp_path / "missing" / "c.md")
    markdown = view.export()
    assert "- [ ]" in markdown
    assert "not written" in view.report.value
    assert "does not exist" in view.report.value


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    view = ChecklistView()
    view.export()
    assert "written" not in view.report.value
    assert "<pre># Key lifecycle checklist" in view.report.value


def test_each_row_shows_the_item_and_how_to_meet_it_escaped() -> None:
    view = ChecklistView()
    rows = [child for child in view.view.children if hasattr(child, "children")]
    assert len(rows) == len(ITEMS)
    box, label = rows[0].children
    assert box is view.boxes[ITEMS[0].id]
    assert label.value.startswith(html.escape(ITEMS[0].text) + "<br><small>")  # escaped text
    assert html.escape(ITEMS[0].how) in label.value
