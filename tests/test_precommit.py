"""`.pre-commit-hooks.yaml`, run by pre-commit itself against throwaway repositories.

The hook repository is built from this working tree (the manifest, ``patterns/__init__.py``,
``errors.py``, ``keys.py`` and ``patterns/scanning/``, nothing else), committed, and used by
a second repository through ``pre-commit install`` and real ``git commit`` calls, offline:
which also proves the hooks need nothing beyond the standard library.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patterns.keys import demo_key, describe_secret
from tests.support import missing
from tests.test_scanning import _notebook, real_shaped
from tests.test_scanning_git import GIT_ENV

REPO = Path(__file__).resolve().parents[1]
HOOK_FILES = ("patterns/__init__.py", "patterns/errors.py", "patterns/keys.py")


@pytest.fixture(scope="module")
def pre_commit() -> list[str]:
    if importlib.util.find_spec("pre_commit") is None:
        missing("pre-commit is not installed; install it with: pip install 'pre-commit>=4'")
    return [sys.executable, "-m", "pre_commit"]


def run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("hooks")
    shutil.copy(REPO / ".pre-commit-hooks.yaml", root)
    for name in HOOK_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    shutil.copytree(
        REPO / "patterns" / "scanning",
        root / "patterns" / "scanning",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for args in (("init", "-q"), ("add", "."), ("commit", "-q", "-m", "hooks")):
        subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True)
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=root,
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return root, rev


@pytest.fixture
def project(tmp_path: Path, hook_repo, pre_commit) -> tuple[Path, dict[str, str]]:
    """A user's repository with both hooks installed as a git pre-commit hook."""
    hooks, rev = hook_repo
    repo = tmp_path / "project"
    repo.mkdir()
    env = {**GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}
    config = {
        "repos": [
            {
                "repo": str(hooks),
                "rev": rev,
                "hooks": [{"id": "anthropic-key-scan"}, {"id": "anthropic-clean-notebook"}],
            }
        ]
    }
    (repo / ".pre-commit-config.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    installed = run(repo, *pre_commit, "install", env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return repo, env


def commit(
    repo: Path, env: dict[str, str], files: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    return run(repo, "git", "commit", "-m", "change", env=env)


def head(repo: Path, env: dict[str, str]) -> str:
    return run(repo, "git", "rev-parse", "--verify", "-q", "HEAD", env=env).stdout.strip()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("settings.py", "API_KEY = '{key}'\n"),
        ("analysis.ipynb", None),
        ("logs/app.log", "2026-01-01 DEBUG sending x-api-key={key}\n"),
    ],
)
def test_the_scan_hook_refuses_a_commit_that_adds_a_key(project, name, text) -> None:
    repo, env = project
    key = real_shaped()
    content = _notebook(output=f"{key}\n") if text is None else text.format(key=key)
    result = commit(repo, env, {name: content})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert head(repo, env) == ""  # nothing was committed
    assert "Anthropic key scan" in output
    assert "Failed" in output
    assert f"{name}:" in output
    assert describe_secret(key) in output
    assert key not in output


def test_clean_files_and_marked_fakes_pass(project) -> None:
    repo, env = project
    files = {"app.py": "print('hello')\n", "demo.py": f"KEY = '{demo_key('hook').reveal()}'\n"}
    result = commit(repo, env, files)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Anthropic key scan" in output
    assert "Passed" in output
    assert head(repo, env)


def test_the_notebook_hook_cleans_widget_state_then_the_commit_goes_through(project) -> None:
    repo, env = project
    secret = real_shaped()
    first = commit(repo, env, {"n.ipynb": _notebook(widget_value="a slider value")})
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "files were modified by this hook" in output
    assert "widget state removed" in output
    assert "widgets" not in json.loads((repo / "n.ipynb").read_text())["metadata"]
    second = commit(repo, env, {})
    assert second.returncode == 0, second.stdout + second.stderr
    # A notebook with a key: the scan refuses it, and the cleaner redacts it for review.
    third = commit(repo, env, {"k.ipynb": _notebook(output=f"{secret}\n")})
    assert third.returncode != 0
    assert secret not in third.stdout + third.stderr
    assert secret not in (repo / "k.ipynb").read_text()


def test_repo_local_hook_runs_the_installed_command(tmp_path: Path, pre_commit) -> None:
    """Where the package is installed, `repo: local` runs `python -m patterns scan` itself."""
    repo = tmp_path / "local"
    repo.mkdir()
    env = {**GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}
    hook = {
        "id": "anthropic-key-scan",
        "name": "Anthropic key scan (installed)",
        "entry": f"{sys.executable} -m patterns scan",
        "language": "system",
    }
    (repo / ".pre-commit-config.yaml").write_text(
        json.dumps({"repos": [{"repo": "local", "hooks": [hook]}]})
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    (repo / "leak.env").write_text(f"ANTHROPIC_API_KEY={real_shaped()}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    result = run(repo, *pre_commit, "run", "--all-files", env={**env, "PWD": str(repo)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "leak.env:1: anthropic-api-key" in result.stdout


def test_the_manifest_is_valid_for_pre_commit(pre_commit) -> None:
    result = run(
        REPO, *pre_commit, "validate-manifest", ".pre-commit-hooks.yaml", env=dict(os.environ)
    )
    assert result.returncode == 0, result.stdout + result.stderr
