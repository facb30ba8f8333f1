"""``python -m patterns serve bff``: configuration errors exit 2 with a clear message that
repeats no password; the happy path is covered by the two-process test in test_bff_redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.__main__ import SERVE_TARGETS, main


def test_bff_is_a_serve_target() -> None:
    assert SERVE_TARGETS["bff"][0] == "patterns.bff.cli"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give at least one --user"),
        (["--user", "alice"], "NAME:PASSWORD"),
        (["--user", "alice:short"], "8 to 1024"),
        (["--user", "alice:long enough", "--model", "claude-3-haiku-20240307"], "not a usable"),
        (["--user", "alice:long enough", "--model", "gpt-4"], "not in the model catalog"),
        (["--user", "alice:long enough", "--allowed-origin", "evil.example"], "allowed_origins"),
        (["--user", "alice:long enough", "--redis", "http://x"], "redis://"),
    ],
)
def test_configuration_errors_exit_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "bff", "--port", "0", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("serve bff: ")
    assert message in err
    assert "long enough" not in err


def test_a_kms_file_needs_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PATTERNS_BFF_KMS_PASSPHRASE", raising=False)
    arguments = ["serve", "bff", "--user", "alice:long enough", "--kms-file", str(tmp_path / "k")]
    assert main(arguments) == 2
    assert "PATTERNS_BFF_KMS_PASSPHRASE" in capsys.readouterr().err
