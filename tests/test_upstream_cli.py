"""``python -m patterns serve upstream``: defaults, key sources, and refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import anthropic
import pytest

from patterns.__main__ import SERVE_TARGETS, build_parser
from patterns.keys import canary_key, demo_key
from patterns.models import DEFAULT_MODEL


def start(*arguments: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "patterns", "serve", "upstream", "--port", "0", *arguments]
    environment = {k: v for k, v in os.environ.items() if k != "PATTERNS_UPSTREAM_KEYS"}
    process = subprocess.Popen(
        command,
        env={**environment, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline() + process.stdout.readline()
    return process, banner


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        _, errors = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        _, errors = process.communicate()
    return errors


def url_of(banner: str) -> str:
    return banner.splitlines()[0].split(" on ", 1)[1].strip()


def test_serve_is_a_registered_target_and_scan_is_kept() -> None:
    assert "upstream" in SERVE_TARGETS
    args = build_parser().parse_args(["serve", "upstream", "--port", "0"])
    assert args.port == 0
    assert args.host == "127.0.0.1"
    assert build_parser().parse_args(["scan", "."]).command == "scan"


def test_without_keys_it_accepts_the_demo_key_and_prints_its_fingerprint() -> None:
    process, banner = start()
    try:
        key = demo_key("upstream")
        assert key.fingerprint in banner
        assert key.reveal() not in banner
        client = anthropic.Anthropic(api_key=key.reveal(), base_url=url_of(banner), max_retries=0)
        hi = client.messages.create(
            model=DEFAULT_MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert hi.content
    finally:
        stop(process)


def test_api_key_argument_replaces_the_environment() -> None:
    given, from_env = canary_key(), canary_key()
    process, banner = start(
        "--api-key", given.reveal(), env={"PATTERNS_UPSTREAM_KEYS": from_env.reveal()}
    )
    try:
        assert given.fingerprint in banner
        assert from_env.fingerprint not in banner
        client = anthropic.Anthropic(
            api_key=from_env.reveal(), base_url=url_of(banner), max_retries=0
        )
        with pytest.raises(anthropic.AuthenticationError):
            client.models.list()
    finally:
        errors = stop(process)
    assert given.reveal() not in errors + banner


def test_a_busy_port_is_refused_with_advice() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "patterns", "serve", "upstream", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 2
    assert "--port 0" in done.stderr


def test_bad_settings_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "patterns", "serve", "upstream", "--stream-delay", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "stream_delay" in done.stderr


@pytest.mark.parametrize(
    "command",
    [["key-age", "--help"], ["scan", "--help"], ["monitor", "--help"], ["doctor", "--help"]],
)
def test_commands_other_than_serve_start_without_a_web_framework(command: list[str]) -> None:
    probe = (
        "import sys\n"
        "from patterns.__main__ import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules)\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stderr.strip() == ""


def test_serve_still_knows_every_target_and_its_options() -> None:
    for name in SERVE_TARGETS:
        args = build_parser().parse_args(["serve", name, "--port", "0"])
        assert args.target == name
        assert callable(args.handler)
