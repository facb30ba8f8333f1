"""The environment is reproducible: Binder pins agree with pyproject.toml, the two make
commands fail early on an old Python, Binder's files alone build a working environment, and
`make lab` serves JupyterLab."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SELF = canonicalize_name(PYPROJECT["project"]["name"])


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(read_pins(path.parent / line[3:].strip()))
            continue
        assert "==" in line, f"{path.name}: '{line}' is not pinned with =="
        name, version = line.split("==", 1)
        key = canonicalize_name(name)
        assert key not in pins or pins[key] == version, f"{name} pinned twice"
        pins[key] = version
    return pins


BINDER_PINS = read_pins(REPO / "binder" / "requirements.txt")
DEV_PINS = read_pins(REPO / "requirements-dev.txt")


def requirements(group: str | None) -> list[Requirement]:
    project = PYPROJECT["project"]
    raw = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [r for r in map(Requirement, raw) if canonicalize_name(r.name) != SELF]


def test_every_runtime_dependency_is_pinned_for_binder_within_its_range() -> None:
    for requirement in requirements(None):
        name = canonicalize_name(requirement.name)
        assert name in BINDER_PINS, f"{requirement.name} is missing from binder/requirements.txt"
        assert requirement.specifier.contains(BINDER_PINS[name], prereleases=True), (
            f"binder pins {requirement.name}=={BINDER_PINS[name]}, outside {requirement}"
        )


@pytest.mark.parametrize("group", sorted(PYPROJECT["project"]["optional-dependencies"]))
def test_every_extra_is_pinned_for_development(group: str) -> None:
    for requirement in requirements(group):
        name = canonicalize_name(requirement.name)
        assert name in DEV_PINS, f"{requirement.name} ([{group}]) is missing from the pins"
        assert requirement.specifier.contains(DEV_PINS[name], prereleases=True)


def test_binder_pins_hold_no_test_tools() -> None:
    for tool in ("pytest", "nbval", "mypy", "ruff", "hypothesis", "moto"):
        assert tool not in BINDER_PINS, f"{tool} belongs in requirements-dev.txt"


def test_this_environment_matches_the_pins() -> None:
    """`make` installs exactly the pins; a mismatch means a stale or hand-edited .venv."""
    wrong = {}
    for name, version in DEV_PINS.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong}; run `make clean test`"


def test_pinned_environment_is_consistent() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_binder_files() -> None:
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.")
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, runtime.removeprefix("python-").split("."))) >= tuple(
        map(int, minimum.split("."))
    )
    post_build = REPO / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert "set -e" in post_build.read_text()
    readme = (REPO / "README.md").read_text()
    assert "mybinder.org/v2/" in readme
    assert "urlpath=lab/tree/notebooks/00-start-here.ipynb" in readme


def test_make_fails_early_on_an_old_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3.9"
    fake.write_text('#!/bin/sh\n[ "$1" = "--version" ] && echo "Python 3.9.18"\nexit 1\n')
    fake.chmod(0o755)
    for target in ("test", "lab"):
        result = subprocess.run(
            ["make", "-s", "-C", str(REPO), target, f"PYTHON={fake}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert "Python 3.11 or newer is needed" in result.stderr
        assert "Python 3.9.18" in result.stderr


def _copy_repository(destination: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "__pycache__", ".*_cache", ".hypothesis"
    )
    shutil.copytree(REPO, destination, ignore=ignore)


@pytest.mark.slow
def test_binder_files_alone_build_a_working_environment(tmp_path: Path) -> None:
    """What repo2docker does: a fresh venv, binder/requirements.txt, then binder/postBuild."""
    source = tmp_path / "repo"
    _copy_repository(source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=source,
        env=env,
        check=True,
        timeout=900,
    )
    subprocess.run(["bash", "binder/postBuild"], cwd=source, env=env, check=True, timeout=600)
    probe = (
        "import importlib, pkgutil, patterns\n"
        "names = [m.name for m in pkgutil.walk_packages(patterns.__path__, 'patterns.')]\n"
        "names = [n for n in names if not n.endswith('.__main__')]  # those run a command\n"
        "for name in names: importlib.import_module(name)\n"
        "print(patterns.__file__); print(len(names))\n"
    )
    result = subprocess.run(
        [python, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(venv) in result.stdout  # the installed package, not the source tree
    check = subprocess.run(
        [python, "-m", "pip", "check"], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_make_lab_serves_jupyterlab_on_8888() -> None:
    if not _port_is_free(8888):
        pytest.skip("port 8888 is in use here (a JupyterLab already running?)")
    env = {**os.environ, "BROWSER": "true"}  # do not try to open a browser
    process = subprocess.Popen(
        ["make", "-s", "lab"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get("http://127.0.0.1:8888/api", timeout=2)
                status = response.status_code
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer on 127.0.0.1:8888"
        assert "version" in response.json()
        lab = httpx.get("http://127.0.0.1:8888/lab", timeout=5, follow_redirects=False)
        assert lab.status_code in {200, 302}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
