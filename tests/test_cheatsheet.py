"""The cheat sheet never drifts from the notebooks: the committed HTML is exactly what
tools/cheatsheet.py generates now, the committed PDF carries the same sheet digest and fits on
one page, and every checklist item of every notebook is on it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from tests.support import require_binary

REPO = Path(__file__).resolve().parents[1]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cheatsheet", REPO / "tools" / "cheatsheet.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cheatsheet"] = module
    spec.loader.exec_module(module)
    return module


cheatsheet = _load_tool()


def test_the_committed_html_is_what_the_tool_generates_now() -> None:
    expected = cheatsheet.render_html(cheatsheet.collect())
    committed = (REPO / "docs" / "cheatsheet.html").read_text(encoding="utf-8")
    assert committed == expected, "docs/cheatsheet.html is stale: run python tools/cheatsheet.py"


def test_the_committed_pdf_is_the_same_sheet_on_one_page() -> None:
    data = (REPO / "docs" / "cheatsheet.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    digest = cheatsheet.digest_of(cheatsheet.collect())
    assert digest in (cheatsheet.pdf_title(data) or ""), (
        "docs/cheatsheet.pdf is stale: run python tools/cheatsheet.py"
    )
    assert cheatsheet.pdf_pages(data) == 1


def test_every_notebook_and_every_checklist_item_is_on_the_sheet() -> None:
    html = (REPO / "docs" / "cheatsheet.html").read_text(encoding="utf-8")
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    sheet = {c.filename: c for c in cheatsheet.collect()}
    assert sorted(sheet) == [path.name for path in notebooks]
    for path in notebooks:
        text = "\n".join(
            cell.source
            for cell in nbformat.read(path, as_version=4).cells  # type: ignore[no-untyped-call]
            if cell.cell_type == "markdown" and "## Checklist" in cell.source
        )
        assert text.count("- [ ] ") == len(sheet[path.name].items) >= 5, path.name
        assert f"<h2>{sheet[path.name].number} " in html


def test_items_keep_their_continuation_lines_and_stop_at_the_next_paragraph() -> None:
    markdown = (
        "## Production notes\n\n- not a checklist item\n\n## Checklist\n\n"
        "- [ ] first item wraps\n      onto a second line\n- [x] second with `code`\n\n"
        "Next: [the next notebook](02.ipynb).\n"
    )
    assert cheatsheet.checklist_items(markdown) == [
        "first item wraps onto a second line",
        "second with `code`",
    ]
    assert cheatsheet.checklist_items("## Exercises\n\n- [ ] no") is None


def test_inline_markdown_is_escaped_and_rendered() -> None:
    rendered = cheatsheet.inline("use `<b>` with *care* and **never** [a link](x.ipynb) & more")
    assert rendered == (
        "use <code>&lt;b&gt;</code> with <em>care</em> and <strong>never</strong> a link &amp; more"
    )


def test_a_notebook_without_a_checklist_is_named(tmp_path: Path) -> None:
    path = tmp_path / "09-empty.ipynb"
    title = nbformat.v4.new_markdown_cell("# Title")  # type: ignore[no-untyped-call]
    notebook = nbformat.v4.new_notebook(cells=[title])  # type: ignore[no-untyped-call]
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    with pytest.raises(cheatsheet.ChecklistMissing, match=r"09-empty\.ipynb"):
        cheatsheet.read_checklist(path)


def test_chromium_prints_the_sheet_on_one_page(tmp_path: Path) -> None:
    chromium = cheatsheet.find_chromium() or require_binary(
        ["chromium", "chromium-browser"], install_hint="apt-get install chromium"
    )
    html_path = tmp_path / "sheet.html"
    html_path.write_text(cheatsheet.render_html(cheatsheet.collect()), encoding="utf-8")
    pdf_path = tmp_path / "sheet.pdf"
    cheatsheet.print_pdf(html_path, pdf_path, chromium)
    data = pdf_path.read_bytes()
    assert cheatsheet.pdf_pages(data) == 1
    assert cheatsheet.digest_of(cheatsheet.collect()) in (cheatsheet.pdf_title(data) or "")
