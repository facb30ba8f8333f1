"""Build the one-page cheat sheet from the notebooks' "## Checklist" sections.

Usage:
  python tools/cheatsheet.py            write docs/cheatsheet.html and docs/cheatsheet.pdf
  python tools/cheatsheet.py --check    exit 1 if the committed files no longer match

The notebooks are the source: each checklist is a markdown task list under a "## Checklist"
heading, and the sheet lists them in the catalog's order (patterns/catalog.py). The HTML is
deterministic, so a test compares it byte for byte with what this tool generates now. The PDF
is printed by headless Chromium (``--print-to-pdf``); PDFs carry a creation date, so instead
of comparing bytes the sheet's digest goes into the HTML title, which Chromium copies into the
PDF's /Title, and the check reads it back.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from patterns.catalog import NOTEBOOKS  # noqa: E402

HTML_PATH = REPO / "docs" / "cheatsheet.html"
PDF_PATH = REPO / "docs" / "cheatsheet.pdf"
HEADING = "## Checklist"
ITEM = re.compile(r"^- \[[ xX]\] (?P<text>.+)$")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-pdf-header-footer",
)


@dataclass(frozen=True, slots=True)
class Checklist:
    number: str
    title: str
    filename: str
    items: tuple[str, ...]


class ChecklistMissing(ValueError):
    """A notebook has no "## Checklist" task list (every notebook must end with one)."""


def checklist_items(markdown: str) -> list[str] | None:
    """The task-list items under "## Checklist" in one markdown cell (continuation lines
    joined), or None when the cell has no such heading."""
    lines = markdown.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
    except StopIteration:
        return None
    items: list[str] = []
    for line in lines[start + 1 :]:
        match = ITEM.match(line)
        if match:
            items.append(match["text"].strip())
        elif line.startswith((" ", "\t")) and line.strip() and items:
            items[-1] += " " + line.strip()
        elif line.strip() and items:
            break  # the paragraph after the list ("Next: ...") or another heading
    return items


def read_checklist(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            items = checklist_items(cell.source)
            if items:
                return items
    raise ChecklistMissing(f"{path.name}: no '{HEADING}' task list (- [ ] ...) found")


def collect(root: Path = REPO) -> list[Checklist]:
    """Every notebook of the catalog that exists, in reading order."""
    found = []
    for entry in NOTEBOOKS:
        path = root / entry.path
        if path.exists():
            items = tuple(read_checklist(path))
            found.append(Checklist(entry.number, entry.title, entry.filename, items))
    return found


def inline(text: str) -> str:
    """The few inline Markdown forms the checklists use: code, bold, italics, links."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        chunk = html.escape(part, quote=False)
        chunk = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", chunk)
        chunk = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", chunk)
        chunk = re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", chunk)
        out.append(chunk)
    return "".join(out)


STYLE = """\
@page { size: A4 landscape; margin: 8mm; }
* { box-sizing: border-box; }
body { font: 7pt/1.24 "DejaVu Sans", "Helvetica", sans-serif; color: #111; margin: 0; }
header { display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 1.5pt solid #111; margin-bottom: 4pt; }
h1 { font-size: 12pt; margin: 0 0 2pt; }
header p { margin: 0; color: #444; }
main { column-count: 4; column-gap: 9pt; }
section { break-inside: avoid; margin: 0 0 5pt; }
h2 { font-size: 8.6pt; margin: 0 0 2pt; padding: 1pt 3pt; background: #e8eef7; }
h2 span { color: #555; font-weight: normal; }
ul { list-style: none; margin: 0; padding: 0; }
li { padding-left: 11pt; text-indent: -11pt; margin: 0 0 1.5pt; }
li::before { content: "\\2610"; display: inline-block; width: 11pt; text-indent: 0; }
code { font: 6.5pt "DejaVu Sans Mono", monospace; background: #f2f2f2; padding: 0 1pt; }
footer { margin-top: 3pt; color: #555; font-size: 6.4pt; }
"""


def digest_of(checklists: list[Checklist]) -> str:
    text = "\n".join(f"{c.number}|{c.title}|" + "|".join(c.items) for c in checklists)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render_html(checklists: list[Checklist]) -> str:
    digest = digest_of(checklists)
    total = sum(len(c.items) for c in checklists)
    sections = []
    for checklist in checklists:
        items = "\n".join(f"      <li>{inline(item)}</li>" for item in checklist.items)
        sections.append(
            "  <section>\n"
            f"    <h2>{checklist.number} {html.escape(checklist.title)} "
            f"<span>({len(checklist.items)})</span></h2>\n"
            f"    <ul>\n{items}\n    </ul>\n"
            "  </section>"
        )
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<!-- Generated by tools/cheatsheet.py from the notebooks' "## Checklist" sections.
     Do not edit: change a notebook's checklist, then run python tools/cheatsheet.py. -->
<html lang="en">
<head>
<meta charset="utf-8">
<title>Anthropic API key patterns: checklists (sheet {digest})</title>
<style>
{STYLE}</style>
</head>
<body>
<header>
  <h1>Handling a user's Anthropic API key: the checklists</h1>
  <p>{total} checks from {len(checklists)} notebooks</p>
</header>
<main>
{body}
</main>
<footer>From the "Checklist" section that ends each notebook in notebooks/; regenerate with
python tools/cheatsheet.py. Sheet {digest}.</footer>
</body>
</html>
"""


def find_chromium() -> str | None:
    configured = os.environ.get("PATTERNS_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def print_pdf(html_path: Path, pdf_path: Path, chromium: str) -> None:
    """Print the sheet with headless Chromium (a throwaway profile, no network)."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603


def pdf_title(data: bytes) -> str | None:
    """The /Title of a PDF's info dictionary (literal or UTF-16 hex string)."""
    match = re.search(rb"/Title\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)", data)
    if not match:
        return None
    raw = match.group(1)
    if raw.startswith(b"<"):
        decoded = bytes.fromhex(raw[1:-1].decode())
        if decoded.startswith(b"\xfe\xff"):
            return decoded[2:].decode("utf-16-be")
        return decoded.decode("latin-1")
    return re.sub(rb"\\(.)", rb"\1", raw[1:-1]).decode("latin-1")


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    checklists = collect()
    text = render_html(checklists)
    digest = digest_of(checklists)
    if args.check:
        stale = []
        if not HTML_PATH.exists() or HTML_PATH.read_text(encoding="utf-8") != text:
            stale.append(str(HTML_PATH.relative_to(REPO)))
        if not PDF_PATH.exists() or digest not in (pdf_title(PDF_PATH.read_bytes()) or ""):
            stale.append(str(PDF_PATH.relative_to(REPO)))
        if stale:
            print(f"stale: {', '.join(stale)}; run python tools/cheatsheet.py", file=sys.stderr)
            return 1
        print(f"cheat sheet {digest} is up to date")
        return 0
    HTML_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {HTML_PATH.relative_to(REPO)} ({sum(len(c.items) for c in checklists)} items)")
    chromium = find_chromium()
    if chromium is None:
        print("chromium not found: the PDF was not updated (apt-get install chromium)")
        return 1
    print_pdf(HTML_PATH, PDF_PATH, chromium)
    pages = pdf_pages(PDF_PATH.read_bytes())
    print(f"wrote {PDF_PATH.relative_to(REPO)} ({pages} page(s))")
    return 0 if pages == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
