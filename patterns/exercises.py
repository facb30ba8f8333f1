"""Checks for the notebooks' exercises.

An exercise is three cells: the reader's cell, a check, and a solution whose source is
collapsed by default (cell metadata ``jupyter.source_hidden``, tag ``solution``) and which CI
runs. A check never raises: it prints a pass line, or a fail line with the reason and a hint,
so a reader's notebook keeps running while they work.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Outcome", "check"]

PASSED_MARK = "✅"
FAILED_MARK = "❌"


class Outcome:
    """What :func:`check` returns: true when the check passed. It displays as nothing in a
    notebook, since the printed line already says it."""

    __slots__ = ("passed",)

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Outcome(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing: the ✅/❌ line is the output."""


def check(title: str, test: Callable[[], object], *, hint: str = "") -> Outcome:
    """Run ``test``; print ``✅ title`` when it returns without an AssertionError, else
    ``❌ title: reason`` and the hint. Returns an :class:`Outcome` (true when it passed).

    ``test`` signals failure with ``assert condition, "what is wrong"``. Any other exception is
    reported the same way (a reader's unfinished cell often raises NameError), with its type,
    but never with a traceback.
    """
    try:
        test()
    except AssertionError as failure:
        reason = str(failure) or "the check did not hold"
    except Exception as error:  # a half-written answer: report, don't crash
        reason = f"{type(error).__name__}: {error}"
    else:
        print(f"{PASSED_MARK} {title}")
        return Outcome(True)
    print(f"{FAILED_MARK} {title}: {reason}")
    if hint:
        print(f"   hint: {hint}")
    return Outcome(False)
