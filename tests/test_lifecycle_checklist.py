"""The lifecycle checklist: items as data (three phases, the guide's items kept), the Markdown
report (deterministic, ticks and counts right, free text redacted) and its atomic file write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patterns.errors import ConfigurationError
from patterns.keys import canary_key
from patterns.lifecycle.checklist import (
    ITEMS,
    PHASES,
    find_item,
    progress,
    render_markdown,
    write_markdown,
)


def test_items_cover_every_phase_with_unique_ids_and_a_way_to_meet_each() -> None:
    assert len({item.id for item in ITEMS}) == len(ITEMS)
    for phase in PHASES:
        assert sum(item.phase == phase for item in ITEMS) >= 5, phase
    assert all(item.text and item.how for item in ITEMS)
    assert sum(item.from_guide for item in ITEMS) >= 10  # the guide's checklist, made concrete
    assert find_item("revoke-in-console").phase == "after an incident"


def test_an_empty_report_lists_everything_open() -> None:
    text = render_markdown([])
    assert text.startswith("# Key lifecycle checklist\n")
    assert f"**0 of {len(ITEMS)} done.**" in text
    assert text.count("- [ ] ") == len(ITEMS)
    assert "- [x]" not in text
    assert "## Before launch (0/6)" in text
    assert "6 open before launch; 6 of the incident steps not yet prepared." in text
    assert render_markdown([]) == text  # no clock inside: two reports diff cleanly


def test_ticked_items_are_checked_and_counted_per_phase() -> None:
    ticked = ["scanning", "redaction", "revoke-in-console"]
    assert progress(ticked) == {
        "before launch": (2, 6),
        "during use": (0, 6),
        "after an incident": (1, 6),
    }
    text = render_markdown(ticked, team="Payments", date="2026-11-30")
    assert text.splitlines()[0] == "# Key lifecycle checklist: Payments"
    assert "Date: 2026-11-30" in text
    assert f"**3 of {len(ITEMS)} done.**" in text
    assert text.count("- [x] ") == 3
    assert f"- [x] {find_item('scanning').text} *(guide)*  " in text
    assert f"- [x] {find_item('redaction').text}  " in text  # ours, not the guide's
    assert "  how: `anthropic-key-scan` hook" in text
    assert "## After an incident (1/6)" in text


def test_everything_ticked_says_nothing_is_open() -> None:
    text = render_markdown([item.id for item in ITEMS])
    assert "Nothing open before launch or for an incident." in text
    assert "- [ ]" not in text


def test_unknown_ids_are_refused_with_the_valid_ones_named() -> None:
    with pytest.raises(ConfigurationError, match="known items: security-model"):
        render_markdown(["scaning"])
    with pytest.raises(ConfigurationError):
        progress(["nope"])


def test_free_text_never_carries_a_key() -> None:
    key = canary_key()
    text = render_markdown(
        ["scanning"], team=f"team {key.reveal()}", notes=f"leaked: {key.reveal()}", date="x"
    )
    assert key.reveal() not in text
    assert key.fingerprint in text  # redacted to its display, so the team can still tell
    with pytest.raises(ConfigurationError) as caught:
        find_item(key.reveal())
    assert key.reveal() not in str(caught.value)


def test_write_markdown_is_atomic_and_refuses_bad_targets(tmp_path: Path) -> None:
    target = tmp_path / "checklist.md"
    assert write_markdown(target, ["scanning"], team="Payments") == target
    assert target.read_text(encoding="utf-8") == render_markdown(["scanning"], team="Payments")
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    write_markdown(target, [])
    assert "**0 of" in target.read_text(encoding="utf-8")
    assert sorted(os.listdir(tmp_path)) == ["checklist.md"]  # no temporary file left behind
    with pytest.raises(ConfigurationError, match="is a folder"):
        write_markdown(tmp_path, [])
    with pytest.raises(ConfigurationError, match="does not exist"):
        write_markdown(tmp_path / "missing" / "c.md", [])
    with pytest.raises(ConfigurationError):
        write_markdown(target, ["unknown"])
    assert "**0 of" in target.read_text(encoding="utf-8")  # the old report is intact
