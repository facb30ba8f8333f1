"""The exercise checker: clear pass/fail lines, hints, and never an exception."""

from __future__ import annotations

import pytest

from patterns.exercises import check


def test_pass_prints_a_tick(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = check("adds up", lambda: None)
    assert outcome
    assert capsys.readouterr().out == "✅ adds up\n"


def test_failed_assertion_prints_reason_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    def test() -> None:
        raise AssertionError("expected 600,000 iterations")

    outcome = check("strong KDF", test, hint="OWASP's PBKDF2 figure")
    assert not outcome
    assert capsys.readouterr().out == (
        "❌ strong KDF: expected 600,000 iterations\n   hint: OWASP's PBKDF2 figure\n"
    )


def test_unfinished_answers_do_not_crash(capsys: pytest.CaptureFixture[str]) -> None:
    def test() -> None:
        raise NameError("name 'answer' is not defined")

    assert not check("answer given", test)
    assert "NameError: name 'answer' is not defined" in capsys.readouterr().out
    assert "Traceback" not in capsys.readouterr().out


def test_outcome_shows_nothing_in_a_notebook() -> None:
    outcome = check("quiet", lambda: None)
    outcome._ipython_display_()  # displays nothing, raises nothing
    assert repr(outcome) == "Outcome(passed=True)"
