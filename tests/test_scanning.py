"""Detection rules, redaction of text and log records, and `python -m patterns scan`."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from patterns.__main__ import main
from patterns.keys import canary_key, demo_key, describe_secret
from patterns.scanning import (
    RedactingFilter,
    find_secrets,
    install_log_redaction,
    redact,
    scan_paths,
)

REPO = Path(__file__).resolve().parents[1]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def real_shaped(prefix: str = "sk-ant-api03-", body: int = 93, suffix: str = "AA") -> str:
    """A key in the real format with no fake marker, made at run time (never committed)."""
    while True:
        value = prefix + "".join(secrets.choice(ALPHABET) for _ in range(body)) + suffix
        if find_secrets(value):
            return value


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (real_shaped, "anthropic-api-key"),
        (lambda: real_shaped("sk-ant-admin01-"), "anthropic-admin-key"),
        (lambda: real_shaped("sk-ant-oat01-", 60, ""), "anthropic-oauth-access-token"),
        (lambda: real_shaped("sk-ant-ort01-", 44, ""), "anthropic-oauth-refresh-token"),
        (lambda: real_shaped("sk-ant-api03-", 40, ""), "anthropic-key-like"),
        (lambda: real_shaped("sk-ant-api04-"), "anthropic-key-like"),
    ],
)
def test_each_rule_detects_its_format(value, rule) -> None:
    secret = value()
    text = f'config = {{"key": "{secret}"}}\n'
    found = find_secrets(text)
    assert [m.rule.id for m in found] == [rule]
    assert found[0].value == secret


def test_boundaries_and_near_misses() -> None:
    secret = real_shaped()
    # Glued to the text before it, the key is still found: repr() and JSON put escapes
    # such as \n right in front of a key, and redaction must not miss those.
    assert [m.value for m in find_secrets(f"x{secret}")] == [secret]
    assert [m.rule.id for m in find_secrets(secret + "Z")] == ["anthropic-key-like"]
    assert find_secrets("sk-ant-api03-short") == []
    assert find_secrets("the format is sk-ant-api03-… plus 95 characters") == []


def test_fakes_are_allowed_unless_asked() -> None:
    text = f"{demo_key('x').reveal()} {canary_key().reveal()}"
    assert find_secrets(text) == []
    assert len(find_secrets(text, include_fakes=True)) == 2


def test_redact_replaces_every_key_with_its_display() -> None:
    secret, fake = real_shaped(), demo_key("r").reveal()
    text = f"a={secret} b={fake}"
    out = redact(text)
    assert secret not in out
    assert fake not in out  # fakes are redacted from logs too
    assert f"[REDACTED {describe_secret(secret)}]" in out


@pytest.mark.parametrize(
    "line",
    [
        "x-api-key: opaque-value-123",
        "X-Api-Key=opaque-value-123",
        "headers={'x-api-key': 'opaque-value-123'}",
        "[(b'x-api-key', b'opaque-value-123')]",
        "Authorization: Bearer opaque-value-123",
        '"authorization": "Bearer opaque-value-123"',
        "api_key=opaque-value-123",
    ],
)
def test_redact_credential_headers_whatever_their_value(line: str) -> None:
    out = redact(line)
    assert "opaque-value-123" not in out
    assert "[REDACTED]" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "GET /v1/models 200 in 3 ms; sk-ant- prefixes are documented in docs/"
    assert redact(text) == text


def _record(msg: object, args: object = (), exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad key {args[0] if isinstance(args, tuple) else ''}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_filter_redacts_message_args_and_exceptions() -> None:
    secret = real_shaped()
    handler_output: list[str] = []
    formatter = logging.Formatter("%(message)s")
    for record in (
        _record(f"inline {secret}"),
        _record("arg %s", (secret,)),
        _record("mapping %(k)s", ({"k": secret},)),
        _record("boom %s", (secret,), exc=True),
    ):
        assert RedactingFilter().filter(record) is True
        handler_output.append(formatter.format(record))
    text = "\n".join(handler_output)
    assert secret not in text
    assert "ValueError: bad key [REDACTED" in text
    assert "Traceback" in text


def test_filter_keeps_argument_structure_for_uvicorn_access_logs() -> None:
    record = _record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:1", "GET", "/x", "1.1", 200))
    RedactingFilter().filter(record)
    assert record.args == ("127.0.0.1:1", "GET", "/x", "1.1", 200)


def test_install_log_redaction_covers_root_handlers_once() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        first = install_log_redaction()
        second = install_log_redaction()
        assert first is second
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        assert logging.lastResort is not None
        assert any(isinstance(f, RedactingFilter) for f in logging.lastResort.filters)
    finally:
        root.removeHandler(handler)


# -- the scan command ---------------------------------------------------------------------


def _notebook(cell_source: str = "print(1)", output: str = "1\n", widget_value: str = "") -> str:
    document = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "c1",
                "metadata": {},
                "source": [cell_source],
                "outputs": [{"name": "stdout", "output_type": "stream", "text": [output]}],
            }
        ],
        "metadata": {
            "widgets": {
                "application/vnd.jupyter.widget-state+json": {
                    "state": {"m1": {"state": {"value": widget_value}}},
                    "version_major": 2,
                    "version_minor": 0,
                }
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["scan", *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("where", ["python", "output", "widget-state", "escaped"])
def test_scan_finds_planted_keys_without_printing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    secret = real_shaped()
    if where == "python":
        path = tmp_path / "settings.py"
        path.write_text(f"# config\nAPI_KEY = '{secret}'\n")
        expected_location = "2"
    elif where == "output":
        path = tmp_path / "leak.ipynb"
        path.write_text(_notebook(output=f"key is {secret}\n"))
        expected_location = None
    elif where == "widget-state":
        path = tmp_path / "widget.ipynb"
        path.write_text(_notebook(widget_value=secret))
        expected_location = None
    else:  # a key that only appears once JSON escapes are decoded
        path = tmp_path / "escaped.ipynb"
        escaped = "".join(f"\\u{ord(c):04x}" for c in secret[:6]) + secret[6:]
        path.write_text(_notebook(output="x").replace('"x"', f'"{escaped}"'))
        expected_location = "cells[0].outputs[0].text[0]"
    status, out = _run(capsys, str(tmp_path))
    assert status == 1
    assert secret not in out
    assert describe_secret(secret) in out
    assert "anthropic-api-key" in out
    if expected_location:
        assert f"{path}:{expected_location}: anthropic-api-key" in out


def test_scan_passes_clean_trees_and_allows_marked_fakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "demo.py").write_text(f"KEY = '{demo_key('scan').reveal()}'\n")
    (tmp_path / "notes.ipynb").write_text(_notebook())
    status, out = _run(capsys, str(tmp_path))
    assert status == 0
    assert "no secrets found in 2 files (1 marked fake key allowed)" in out
    status, out = _run(capsys, "--include-fakes", str(tmp_path))
    assert status == 1


def test_scan_skips_excluded_dirs_and_globs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in (".git", ".venv", "node_modules"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.txt").write_text(real_shaped())
    (tmp_path / "fixture.txt").write_text(real_shaped())
    status, _ = _run(capsys, "--exclude", "*/fixture.txt", str(tmp_path))
    assert status == 0


def test_scan_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = real_shaped()
    (tmp_path / "a.env").write_text(f"ANTHROPIC_API_KEY={secret}\n")
    status = main(["scan", "--format", "json", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["findings"][0]["rule"] == "anthropic-api-key"
    assert secret not in json.dumps(report)


def test_scan_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, "/nonexistent/path")
    assert status == 2
    assert "no such file" in out


def test_scan_paths_counts_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing")
    findings, count = scan_paths([tmp_path])
    assert (findings, count) == ([], 1)


def test_module_entry_point_scans_the_repository() -> None:
    """The repository itself is clean: the same check `make test` runs."""
    result = subprocess.run(
        [sys.executable, "-m", "patterns", "scan", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "wrap",
    [
        lambda k: repr("first line\n" + k),
        lambda k: json.dumps({"content": "x\t" + k}),
        lambda k: str({"body": b"line\n" + k.encode()}),
        lambda k: "apikey" + k,
    ],
)
def test_keys_behind_escapes_are_redacted(wrap) -> None:
    secret = real_shaped()
    text = wrap(secret)
    assert secret not in redact(text)
    assert [m.value for m in find_secrets(text)] == [secret]


def test_a_match_never_shows_its_value() -> None:
    secret = real_shaped()
    (match,) = find_secrets(secret)
    assert secret not in repr(match)
    assert secret not in repr([match])
