"""Binder proof: an environment built from ``binder/`` alone runs every notebook.

What repo2docker does, on a copy of the repository without .git or .venv: a fresh venv, ``pip
install -r binder/requirements.txt`` (the pinned runtime, no test tools), then
``binder/postBuild``. The venv is built once for this module. Then every notebook runs under
strict nbval with a kernel from that venv (the test tools stay outside it, in this process's
environment), and the doctor reports it ready. The install time and size and the peak memory
of the notebook run are measured and bounded: mybinder.org gives 1-2 GB of RAM.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from patterns.serving import free_port

REPO = Path(__file__).resolve().parents[1]
KERNEL_NAME = "binder-env"
MAX_INSTALL_MB = 650  # measured 445-451 MB of files; keep Binder images small
MAX_PEAK_RSS_MB = 1024  # mybinder.org guarantees 1 GB


@dataclass(frozen=True)
class BinderEnvironment:
    source: Path
    venv: Path
    env: dict[str, str]
    install_seconds: float
    install_mb: float

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def _folder_mb(folder: Path) -> float:
    total = sum(path.lstat().st_size for path in folder.rglob("*") if not path.is_symlink())
    return total / 2**20


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory: pytest.TempPathFactory) -> BinderEnvironment:
    root = tmp_path_factory.mktemp("binder")
    source = root / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "__pycache__", ".*_cache", ".hypothesis"
    )
    shutil.copytree(REPO, source, ignore=ignore)
    venv = root / "venv"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for name in ("PYTHONPATH", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        env.pop(name, None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    requirements = [*pip, "-r", "binder/requirements.txt"]
    subprocess.run(requirements, cwd=source, env=env, check=True, timeout=1200)
    subprocess.run(["bash", "binder/postBuild"], cwd=source, env=env, check=True, timeout=600)
    seconds = time.perf_counter() - started
    # The kernel the notebooks run in: the Binder venv's Python, under a name of its own.
    kernels = root / "jupyter" / "kernels" / KERNEL_NAME
    kernels.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Binder environment", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    env["JUPYTER_PATH"] = str(root / "jupyter")
    return BinderEnvironment(source, venv, env, seconds, _folder_mb(venv))


@pytest.mark.slow
def test_the_binder_install_is_small(binder_env: BinderEnvironment) -> None:
    print(
        f"binder install: {binder_env.install_seconds:.0f} s, {binder_env.install_mb:.0f} MB "
        f"(venv + binder/requirements.txt + postBuild)"
    )
    assert binder_env.install_mb < MAX_INSTALL_MB
    probe = "import patterns, pytest"
    result = subprocess.run(
        [binder_env.python, "-c", probe],
        env=binder_env.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'pytest'" in result.stderr  # no test tools in the image


@pytest.mark.slow
def test_the_doctor_reports_the_binder_environment_ready(binder_env: BinderEnvironment) -> None:
    result = subprocess.run(
        [binder_env.python, "-m", "patterns", "doctor"],
        cwd=binder_env.source,
        env=binder_env.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✅ packages: all" in result.stdout
    assert "✅ widgets front end" in result.stdout


def _peak_rss(process: subprocess.Popen[str], peak: list[int], done: threading.Event) -> None:
    """Sample the memory of a process and all its children (kernels, servers) until done."""
    try:
        parent = psutil.Process(process.pid)
        while not done.wait(0.25):
            total = 0
            for member in [parent, *parent.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    continue
            peak[0] = max(peak[0], total)
    except psutil.Error:
        return


@pytest.mark.slow
def test_every_notebook_runs_under_nbval_in_the_binder_environment(
    binder_env: BinderEnvironment,
) -> None:
    notebooks = sorted(
        str(p.relative_to(binder_env.source)) for p in binder_env.source.glob("notebooks/*.ipynb")
    )
    assert len(notebooks) >= 6
    command = [
        sys.executable, "-m", "pytest", "-q", "-vv", "-p", "no:cacheprovider", "--nbval",
        "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
        f"--nbval-kernel-name={KERNEL_NAME}", "--timeout=600", *notebooks,
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=binder_env.source,
        env=binder_env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_peak_rss, args=(process, peak, done), daemon=True)
    sampler.start()
    try:
        output, _ = process.communicate(timeout=1500)
    finally:
        done.set()
        sampler.join()
        if process.poll() is None:  # pragma: no cover - only on a timeout
            process.kill()
            process.wait()
    seconds = time.perf_counter() - started
    peak_mb = peak[0] / 2**20
    print(f"binder notebooks: {len(notebooks)} in {seconds:.0f} s, peak RSS {peak_mb:.0f} MB")
    assert peak_mb < MAX_PEAK_RSS_MB
    assert process.returncode == 0, output[-6000:]


def _start_jupyterlab(
    binder_env: BinderEnvironment, root: Path, runtime: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    """JupyterLab from the Binder venv on a free loopback port; returns (process, base, token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **binder_env.env,
        "JUPYTER_CONFIG_DIR": str(runtime / "config"),
        "JUPYTER_RUNTIME_DIR": str(runtime / "runtime"),
    }
    command = [
        binder_env.python, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/api", timeout=2).status_code == 200:
                return process, base, token
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    process.wait()
    pytest.fail("JupyterLab from the Binder environment did not start")


@pytest.mark.slow
def test_an_nbgitpuller_link_gives_a_participant_the_notebooks(
    binder_env: BinderEnvironment, tmp_path: Path
) -> None:
    """docs/jupyterhub.md's one-click link, against real nbgitpuller in the pinned environment
    (a hub adds only /hub/user-redirect/ in front): it clones the repository into the home
    folder and the notebook it names is served."""
    pip = [binder_env.python, "-m", "pip", "install", "--quiet", "nbgitpuller"]
    subprocess.run(pip, env=binder_env.env, check=True, timeout=600)
    repository = tmp_path / "served" / "anthropic-key-patterns"  # the folder name in the link
    shutil.copytree(binder_env.source / "notebooks", repository / "notebooks")
    git_env = {
        **binder_env.env,
        "GIT_AUTHOR_NAME": "workshop",
        "GIT_AUTHOR_EMAIL": "workshop@example.invalid",
        "GIT_COMMITTER_NAME": "workshop",
        "GIT_COMMITTER_EMAIL": "workshop@example.invalid",
    }
    for step in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "notebooks"]):
        subprocess.run(["git", *step], cwd=repository, env=git_env, check=True, timeout=60)
    home = tmp_path / "home"
    home.mkdir()
    process, base, token = _start_jupyterlab(binder_env, home, tmp_path)
    auth = {"Authorization": f"token {token}"}
    query = {
        "repo": repository.as_uri(),
        "branch": "main",
        "urlpath": "lab/tree/anthropic-key-patterns/notebooks/00-start-here.ipynb",
    }
    try:
        page = httpx.get(f"{base}/git-pull", params=query, headers=auth, timeout=30)
        assert page.status_code == 200, page.text[:500]
        events = []
        api = {name: query[name] for name in ("repo", "branch")}
        with httpx.stream(
            "GET", f"{base}/git-pull/api", params=api, headers=auth, timeout=120
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
                    if events[-1].get("phase") in {"finished", "error"}:
                        break
        assert events, "nbgitpuller sent no progress"
        assert events[-1]["phase"] == "finished", events[-1]
        assert (home / "anthropic-key-patterns" / "notebooks" / "00-start-here.ipynb").is_file()
        notebook = httpx.get(
            f"{base}/api/contents/anthropic-key-patterns/notebooks/00-start-here.ipynb",
            headers=auth,
            timeout=30,
        )
        assert notebook.status_code == 200
        assert notebook.json()["type"] == "notebook"
    finally:
        process.kill()
        process.wait(timeout=30)
