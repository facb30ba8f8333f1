"""``python -m patterns monitor``: text report, exit status, figure, webhook from the
environment (a local receiver), and no malformed line or webhook secret ever printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patterns.__main__ import main
from patterns.keys import canary_key
from tests.test_alert_hooks import SECRET_PATH, Receiver
from tests.test_monitoring import START, call, steady_then_burst


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def replica_logs(tmp_path: Path, events: list[dict[str, Any]], count: int = 2) -> list[str]:
    paths = []
    for number in range(count):
        path = tmp_path / f"bff-{number}.log"
        share = events[number::count]
        path.write_text("".join(json.dumps(e) + "\n" for e in share), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_alerts_give_exit_1_with_the_report_and_the_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = replica_logs(tmp_path, [*steady_then_burst(), call("bob", START + 30, 900)])
    secret = canary_key().reveal()
    with open(logs[0], "a", encoding="utf-8") as stream:
        stream.write(f"oops {secret}\n")
    figure = tmp_path / "usage.png"
    assert main(["monitor", *logs, "--plot", str(figure)]) == 1
    out = capsys.readouterr().out
    assert f"{logs[0]}: 21 events, 1 malformed line(s) skipped (line 22)" in out
    assert "alice       40       1200  30 calls at 2030-03-17 17:52 UTC" in out
    assert "bob          1        900  1 calls at 2030-03-17 17:47 UTC" in out
    assert "alerts: 1\n  usage anomaly: alice made 20 requests per minute" in out
    assert "latest requests: req_alice_" in out
    assert secret not in out
    assert figure.read_bytes().startswith(b"\x89PNG")


def test_a_quiet_log_gives_exit_0_and_thresholds_are_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = replica_logs(tmp_path, steady_then_burst()[:10], count=1)
    assert main(["monitor", *quiet]) == 0
    assert "alerts: 0" in capsys.readouterr().out
    spiky = replica_logs(tmp_path, steady_then_burst()[:16], count=1)
    assert main(["monitor", *spiky]) == 0
    assert main(["monitor", *spiky, "--min-requests", "5", "--factor", "2"]) == 1


def test_alerts_go_to_the_webhook_named_by_an_environment_variable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
) -> None:
    logs = replica_logs(tmp_path, steady_then_burst())
    monkeypatch.setenv("TEST_PAGER_URL", receiver.url)
    assert main(["monitor", *logs, "--webhook-env", "TEST_PAGER_URL"]) == 1
    captured = capsys.readouterr()
    assert "sent 1 of 1 alert(s) to http://127.0.0.1" in captured.out
    ((path, body),) = receiver.received
    assert path == SECRET_PATH
    assert body["alert"]["user"] == "alice"
    receiver.plan = [500, 500, 500]
    assert main(["monitor", *logs, "--webhook-env", "TEST_PAGER_URL"]) == 3
    captured = capsys.readouterr()
    assert "did not take the alert (HTTP 500)" in captured.err
    assert SECRET_PATH not in captured.out + captured.err


def test_usage_errors_give_exit_2_without_echoing_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = replica_logs(tmp_path, steady_then_burst())
    assert main(["monitor", str(tmp_path / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["monitor", *logs, "--webhook-env", "TEST_UNSET_VARIABLE"]) == 2
    assert "TEST_UNSET_VARIABLE is not set" in capsys.readouterr().err
    monkeypatch.setenv("TEST_PAGER_URL", "http://hooks.example.com" + SECRET_PATH)
    assert main(["monitor", *logs, "--webhook-env", "TEST_PAGER_URL"]) == 2
    err = capsys.readouterr().err
    assert "use https" in err
    assert SECRET_PATH not in err
    assert main(["monitor", *logs, "--factor", "1"]) == 2


def test_the_command_is_registered(tmp_path: Path) -> None:
    logs = replica_logs(tmp_path, steady_then_burst())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    done = subprocess.run(
        [sys.executable, "-m", "patterns", "monitor", *logs],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "alerts: 1" in done.stdout


def test_registering_the_command_loads_neither_fastapi_nor_matplotlib() -> None:
    probe = (
        "import argparse, sys\n"
        "from patterns.lifecycle.monitoring import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_command(parser.add_subparsers())\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'redis', 'matplotlib', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
