"""Optional programs: a skip with the install hint locally, a failure under CI=true."""

from __future__ import annotations

import pytest

from tests import support


def test_missing_program_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nothing"):
        support.require_binary(["no-such-program-here"], install_hint="apt-get install nothing")


def test_missing_program_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so this is a failure"):
        support.require_binary(["no-such-program-here"], install_hint="apt-get install nothing")


def test_present_program_is_found() -> None:
    assert support.require_binary(["no-such-program", "sh"], install_hint="-").endswith("/sh")
