"""`python -m patterns scan --git`: keys planted in a throwaway repository's history (a file
later deleted, a notebook output on a side branch, a log file, a merge) are reported with
their commit, path and line, once each, and never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patterns.__main__ import main
from patterns.keys import demo_key, describe_secret, fingerprint
from patterns.scanning import scan_git_history
from tests.test_scanning import _notebook, real_shaped

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    for name, text in files.items():
        path = repo / name
        if text is None:
            git(repo, "rm", "-q", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A repository whose working tree is clean but whose history holds three keys."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    keys = {"settings": real_shaped(), "notebook": real_shaped(), "log": real_shaped()}
    commits = {}
    commits["base"] = commit(repo, "base", {"README.md": "hello\n", "app.py": "print(1)\n"})
    commits["settings"] = commit(
        repo, "add settings", {"settings.py": f"# config\nAPI_KEY = '{keys['settings']}'\n"}
    )
    # The key stays in the file while it changes three more times: reported once.
    for n in range(3):
        commit(repo, f"edit {n}", {"settings.py": f"# v{n}\nAPI_KEY = '{keys['settings']}'\n"})
    commits["cleanup"] = commit(repo, "remove key", {"settings.py": None})
    git(repo, "checkout", "-q", "-b", "analysis", commits["base"])
    commits["notebook"] = commit(
        repo, "notebook", {"analysis.ipynb": _notebook(output=f"key is {keys['notebook']}\n")}
    )
    commits["notebook-clean"] = commit(repo, "clear output", {"analysis.ipynb": _notebook()})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "analysis")
    git(repo, "checkout", "-q", "-b", "logs")
    logs = "".join(f"2026-01-0{n} INFO request ok\n" for n in range(1, 5))
    commits["log"] = commit(
        repo, "debug log", {"logs/app.log": logs + f"2026-01-05 DEBUG x-api-key={keys['log']}\n"}
    )
    commit(repo, "drop log", {"logs/app.log": None})
    git(repo, "checkout", "-q", "main")
    return repo, keys, commits


def test_history_scan_reports_commit_path_and_line_once_per_key(planted) -> None:
    repo, keys, commits = planted
    result = scan_git_history(repo)
    where = {(f.commit, f.path, f.location, f.rule_id, f.secret_hash) for f in result.findings}
    assert where == {
        (
            commits["settings"],
            "settings.py",
            "2",
            "anthropic-api-key",
            fingerprint(keys["settings"]),
        ),
        (
            commits["notebook"],
            "analysis.ipynb",
            "16",
            "anthropic-api-key",
            fingerprint(keys["notebook"]),
        ),
        (commits["log"], "logs/app.log", "5", "anthropic-api-key", fingerprint(keys["log"])),
    }
    assert result.commits >= 10
    assert not any(key in repr(result) for key in keys.values())


def test_working_tree_is_clean_but_history_is_not(planted, capsys) -> None:
    repo, keys, commits = planted
    assert main(["scan", str(repo)]) == 0
    capsys.readouterr()
    assert main(["scan", "--git", str(repo)]) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    for key in keys.values():
        assert key not in out
        assert describe_secret(key) in out
    assert f"{commits['settings'][:12]}:settings.py:2: anthropic-api-key" in out
    assert "3 secrets found in" in captured.err
    assert "Revoke each real key" in captured.err


def test_json_output_names_the_commit(planted, capsys) -> None:
    repo, keys, commits = planted
    assert main(["scan", "--git", "--format", "json", str(repo)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {row["commit"] for row in report["findings"]} == {
        commits["settings"],
        commits["notebook"],
        commits["log"],
    }
    assert report["commits"] >= 10
    text = json.dumps(report)
    assert not any(key in text for key in keys.values())


def test_excludes_apply_to_repository_paths(planted) -> None:
    repo, _, _ = planted
    result = scan_git_history(repo, excludes=["logs/*", "*.ipynb"])
    assert [f.path for f in result.findings] == ["settings.py"]


def test_fakes_in_history_are_flagged_and_allowed(tmp_path: Path, capsys) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(repo, "demo", {"demo.py": f"KEY = '{demo_key('history').reveal()}'\n"})
    assert main(["scan", "--git", str(repo)]) == 0
    assert "no secrets found in 1 commit (1 marked fake key allowed)" in capsys.readouterr().err
    assert main(["scan", "--git", "--include-fakes", str(repo)]) == 1


def test_a_key_moved_to_another_file_is_reported_there_too(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    key = real_shaped()
    first = commit(repo, "a", {"a.txt": key + "\n"})
    second = commit(repo, "move", {"a.txt": None, "b/c.txt": "x\n" + key + "\n"})
    found = {(f.commit, f.path, f.location) for f in scan_git_history(repo).findings}
    assert found == {(first, "a.txt", "1"), (second, "b/c.txt", "2")}


def test_empty_repository_and_non_repositories(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert main(["scan", "--git", str(empty)]) == 0
    assert "0 commits" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    status = main(["scan", "--git", str(plain)])
    assert status == 2
    assert "not a git repository" in capsys.readouterr().err
    assert main(["scan", "--git", str(empty), str(plain)]) == 2


def test_standalone_entry_point_scans_history(planted) -> None:
    """`python -m patterns.scanning` (the pre-commit hook's entry) imports only the scanner."""
    repo, keys, _ = planted
    code = (
        "import runpy, sys; sys.argv = ['x', '--git', sys.argv[1]]\n"
        "try:\n    runpy.run_module('patterns.scanning', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    heavy = sorted(m for m in ('fastapi', 'httpx', 'anthropic') if m in sys.modules)\n"
        "    print('heavy:', heavy, file=sys.stderr)\n    raise\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "heavy: []" in result.stderr
    assert not any(key in result.stdout + result.stderr for key in keys.values())


def test_an_untrusted_repository_runs_none_of_its_configured_programs(planted) -> None:
    repo, _, _ = planted
    marker = repo.parent / "ran"
    script = repo.parent / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    for option in ("core.fsmonitor", "diff.external", "core.pager"):
        git(repo, "config", option, str(script))
    git(repo, "config", "diff.python.textconv", str(script))
    (repo / ".gitattributes").write_text("*.py diff=python\n")
    result = scan_git_history(repo)
    assert len(result.findings) == 3
    assert not marker.exists()
