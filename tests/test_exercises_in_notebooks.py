"""Every notebook has at least two checked exercises, built the same way: a markdown task, a
cell to write in, a check cell (``patterns.exercises.check``) whose saved output is the
reader's ❌ with a hint, and a solution cell tagged ``solution`` with its source hidden, whose
saved output is the same check's ✅. Strict nbval (``make test``) re-runs every notebook and
compares those outputs, so the solutions pass their checks when run, not only when saved.

The trainer's switch (``python -m patterns solutions --show|--hide``) changes nothing but the
``jupyter.source_hidden`` flag, and a real JupyterLab 4 in headless Chromium shows a hidden
solution collapsed and a shown one expanded.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import psutil  # type: ignore[import-untyped]
import pytest

from patterns.__main__ import main
from patterns.serving import free_port
from patterns.solutions import is_solution, set_hidden

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PASS, FAIL = "✅ ", "❌ "


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def stdout_of(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def exercises(notebook: Any) -> list[tuple[int, int, int]]:
    """(reader cell, check cell, solution cell) indexes of each exercise."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if is_solution(cell):
            found.append((index - 2, index - 1, index))
    return found


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_at_least_two_checked_exercises_with_hidden_solutions(path: Path) -> None:
    notebook = read(path)
    found = exercises(notebook)
    assert len(found) >= 2, f"{path.name}: {len(found)} exercise(s) with a solution cell"
    previous_end = -1
    for reader_index, check_index, solution_index in found:
        where = f"{path.name} cell {solution_index}"
        reader, check, solution = (
            notebook.cells[i] for i in (reader_index, check_index, solution_index)
        )
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{where}: a solution's source is hidden by default (jupyter.source_hidden)"
        )
        for cell in (reader, check):
            assert cell.cell_type == "code", f"{where}: needs a reader cell and a check cell"
            assert not is_solution(cell), f"{where}: two solution cells in a row"
            assert not cell.metadata.get("jupyter", {}).get("source_hidden")
        task = [
            c for c in notebook.cells[previous_end + 1 : reader_index] if c.cell_type == "markdown"
        ]
        assert task, f"{where}: no markdown task before the exercise"
        assert "check(" in check.source, f"{where}: the check cell does not call check()"
        failed = [line for line in stdout_of(check).splitlines() if line.startswith(FAIL)]
        assert failed, f"{where}: the saved check output should be the reader's ❌"
        assert "   hint: " in stdout_of(check), f"{where}: a failing check gives a hint"
        passed = [line for line in stdout_of(solution).splitlines() if line.startswith(PASS)]
        assert passed, f"{where}: the solution's saved output has no ✅"
        assert FAIL not in stdout_of(solution), f"{where}: the solution fails a check"
        titles = {line.removeprefix(PASS) for line in passed}
        assert any(line.startswith(f"{FAIL}{title}:") for line in failed for title in titles), (
            f"{where}: the solution passes a different check than the check cell"
        )
        previous_end = solution_index


def test_the_switch_shows_and_hides_only_the_solutions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = tmp_path / "notebooks"
    copies.mkdir()
    originals = {}
    for path in NOTEBOOKS:
        originals[path.name] = path.read_bytes()
        (copies / path.name).write_bytes(originals[path.name])
    assert main(["solutions", "--show", str(copies)]) == 0
    assert "every solution is now shown" in capsys.readouterr().out
    for path in copies.iterdir():
        shown, original = read(path), read(REPO / "notebooks" / path.name)
        assert len(shown.cells) == len(original.cells)
        for after, before in zip(shown.cells, original.cells, strict=True):
            assert after.source == before.source
            assert after.get("outputs") == before.get("outputs")
            if is_solution(after):
                assert not after.metadata.get("jupyter", {}).get("source_hidden")
            else:
                assert after.metadata == before.metadata
    assert main(["solutions", "--hide", str(copies)]) == 0
    for path in copies.iterdir():
        assert path.read_bytes() == originals[path.name], f"{path.name} did not round-trip"
    assert set_hidden(copies / NOTEBOOKS[0].name, hidden=True) == 0  # already hidden: no write


def test_the_switch_refuses_a_missing_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["solutions", "--show", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def _exercise_notebook(path: Path) -> None:
    cells = [
        nbformat.v4.new_markdown_cell("### Exercise"),  # type: ignore[no-untyped-call]
        nbformat.v4.new_code_cell("reader_cell = 1"),  # type: ignore[no-untyped-call]
        nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
            "solution_cell = 2",
            metadata={"jupyter": {"source_hidden": True}, "tags": ["solution"]},
        ),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)  # type: ignore[no-untyped-call]
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real JupyterLab on a free loopback port, rooted in a throwaway folder."""
    root = tmp_path / "root"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api", timeout=2).status_code == 200:
                    break
            assert process.poll() is None, "JupyterLab exited"
            time.sleep(0.3)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield f"{base}/lab/tree/exercise.ipynb?token={token}", root
    finally:
        # JupyterLab and the kernel it started for the page: stop them by id (the kernel
        # runs in its own session, so a process-group kill would miss it).
        family = [process.pid, *(p.pid for p in psutil.Process(process.pid).children(True))]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.slow
def test_jupyterlab_shows_a_hidden_solution_collapsed_until_the_switch(
    jupyterlab: tuple[str, Path], browser: Any
) -> None:
    url, root = jupyterlab
    notebook = root / "exercise.ipynb"
    _exercise_notebook(notebook)

    def placeholders() -> list[bool]:
        """For each code cell as JupyterLab renders it: is its source collapsed?"""
        page = browser.new_page()
        try:
            page.goto(url)
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            cells.nth(1).wait_for(timeout=60_000)
            page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-editor").first.wait_for()
            return [cells.nth(i).locator(".jp-InputPlaceholder").is_visible() for i in range(2)]
        finally:
            page.close()

    assert placeholders() == [False, True]
    assert main(["solutions", "--show", str(notebook)]) == 0
    assert placeholders() == [False, False]
