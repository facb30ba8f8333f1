"""The workshop documents stay true: docs/jupyterhub.md's nbgitpuller link opens a notebook
that exists, its Helm values parse with the limits it states, its install commands use the
Binder pins the way binder/postBuild does; docs/workshop.md names every exercise that the
notebooks have, and there is a facilitator note for every notebook."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import nbformat
import pytest
import yaml  # type: ignore[import-untyped]

from patterns.solutions import is_solution

REPO = Path(__file__).resolve().parents[1]
HUB_DOC = (REPO / "docs" / "jupyterhub.md").read_text(encoding="utf-8")
WORKSHOP = (REPO / "docs" / "workshop.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", text, flags=re.S | re.M)


def test_the_nbgitpuller_link_opens_the_start_here_notebook() -> None:
    [link] = [line.strip() for line in fenced(HUB_DOC, "text")[0].splitlines() if line.strip()]
    parts = urlsplit(link)
    assert parts.scheme == "https"
    assert parts.path == "/hub/user-redirect/git-pull"
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert set(query) == {"repo", "branch", "urlpath"}
    folder = query["repo"].rstrip("/").rsplit("/", 1)[-1]
    assert query["urlpath"] == f"lab/tree/{folder}/notebooks/00-start-here.ipynb"
    assert (REPO / "notebooks" / "00-start-here.ipynb").exists()
    for name, value in query.items():  # encoded as the document says
        assert f"{name}={quote(value, safe='')}" in link


def test_the_helm_values_parse_with_the_stated_limits() -> None:
    [block] = fenced(HUB_DOC, "yaml")
    values = yaml.safe_load(block)
    singleuser = values["singleuser"]
    assert singleuser["memory"]["limit"] == "1G"
    assert singleuser["cpu"]["limit"] == 1
    assert singleuser["defaultUrl"] == "/lab"
    assert values["cull"]["enabled"] is True
    assert values["prePuller"]["hook"]["enabled"] is True


def test_the_hub_installs_the_binder_pins_the_way_postbuild_does() -> None:
    commands = "\n".join(fenced(HUB_DOC, "bash"))
    assert "-m pip install -r binder/requirements.txt" in commands
    assert "-m pip install --no-deps ." in commands
    post_build = (REPO / "binder" / "postBuild").read_text()
    assert "pip install --no-deps" in post_build
    assert "sudo tljh-config set limits.memory 1G" in commands


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_has_a_facilitator_note_and_its_exercises_are_in_the_agenda(
    path: Path,
) -> None:
    note = REPO / "docs" / "facilitator" / f"{path.stem}.md"
    assert note.exists(), f"docs/facilitator/{path.stem}.md is missing"
    text = note.read_text(encoding="utf-8")
    for heading in ("## Key messages", "## What to demo live", "## Where people get stuck"):
        assert heading in text, f"{note.name}: no '{heading}'"
    assert "## Likely questions" in text
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    count = sum(is_solution(cell) for cell in notebook.cells)
    number = path.stem[:2]
    for exercise in range(1, count + 1):
        assert re.search(rf"^\| {number} \| Ex {exercise} ", WORKSHOP, flags=re.M), (
            f"docs/workshop.md's exercise table has no row for {number} Ex {exercise}"
        )
