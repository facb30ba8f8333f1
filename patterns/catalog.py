"""The notebooks of the suite, in reading order, with time estimates.

One list for the start-here map, the README and the workshop agenda, so they cannot drift.
``ready`` is flipped by the change that lands a notebook (a test checks it against the files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NOTEBOOKS", "Notebook"]


@dataclass(frozen=True, slots=True)
class Notebook:
    number: str
    filename: str
    title: str
    minutes: int
    pattern_id: str | None
    ready: bool

    @property
    def path(self) -> str:
        return f"notebooks/{self.filename}"


NOTEBOOKS: Final[tuple[Notebook, ...]] = (
    Notebook(
        "00",
        "00-start-here.ipynb",
        "Start here: threat model and choosing a pattern",
        15,
        None,
        True,
    ),
    Notebook("01", "01-direct-browser-access.ipynb", "The direct browser call", 25, "direct", True),
    Notebook(
        "02",
        "02-encrypted-storage.ipynb",
        "Encrypted client-side storage",
        30,
        "encrypted-storage",
        True,
    ),
    Notebook(
        "03",
        "03-session-key-manager.ipynb",
        "The in-memory session key manager",
        20,
        "session-keys",
        True,
    ),
    Notebook(
        "04",
        "04-byok-kms-envelope.ipynb",
        "BYOK with a KMS: envelope encryption",
        35,
        "byok-kms",
        True,
    ),
    Notebook("05", "05-backend-for-frontend.ipynb", "The backend-for-frontend", 40, "bff", True),
    Notebook(
        "06",
        "06-temporary-token-proxy.ipynb",
        "A proxy with temporary tokens",
        30,
        "token-proxy",
        True,
    ),
    Notebook(
        "07",
        "07-key-lifecycle.ipynb",
        "A key's life: scanning, rotation, incidents",
        35,
        None,
        True,
    ),
)
