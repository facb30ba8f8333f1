"""The guide's recommendations matrix and the threat model's key-exposure table, as data.

Both are tables the notebooks print and the tests check against :data:`PATTERNS`; neither
drives :func:`~patterns.advisor.recommend`, which applies its own rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from patterns.advisor.profiles import Level

__all__ = ["ACTORS", "KEY_EXPOSURE", "RECOMMENDATIONS_MATRIX", "MatrixRow"]


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One row of the guide's recommendations matrix, with our reading of it."""

    use_case: str
    guide_says: str
    pattern_id: str
    security: Level
    complexity: Level
    user_experience: Level
    note: str = ""


RECOMMENDATIONS_MATRIX: Final[tuple[MatrixRow, ...]] = (
    MatrixRow(
        "Internal tools",
        "Direct BYOK with encryption",
        "encrypted-storage",
        Level.MEDIUM,
        Level.LOW,
        Level.EXCELLENT,
    ),
    MatrixRow("Public applications", "BFF pattern", "bff", Level.HIGH, Level.HIGH, Level.GOOD),
    MatrixRow(
        "Prototyping",
        "Session-based temporary storage",
        "session-keys",
        Level.MEDIUM,
        Level.LOW,
        Level.GOOD,
    ),
    MatrixRow(
        "Enterprise",
        "BYOK with KMS",
        "byok-kms",
        Level.VERY_HIGH,
        Level.VERY_HIGH,
        Level.GOOD,
        note="In practice it sits behind a BFF: the KMS protects the key at rest, the BFF "
        "keeps it off the client.",
    ),
    MatrixRow(
        "Development",
        "Proxy with temp tokens",
        "token-proxy",
        Level.MEDIUM,
        Level.MEDIUM,
        Level.GOOD,
        note="Rated Medium by the guide; with hashed, scoped tokens and an atomic use "
        "counter (notebook 06) it earns High.",
    ),
    MatrixRow(
        "Mobile apps",
        "BFF with OAuth",
        "bff",
        Level.HIGH,
        Level.HIGH,
        Level.EXCELLENT,
        note="An app binary is public: sign users in with OAuth (authorization code + PKCE) "
        "and keep the key in the BFF.",
    ),
)

#: Who can read the key (not merely use it) in each architecture. The columns of the threat
#: model in notebook 00; the later notebooks demonstrate each cell.
ACTORS: Final[tuple[str, ...]] = (
    "a script injected into the page (XSS)",
    "a browser extension",
    "someone with the device later",
    "your server's operators",
    "a thief with a database dump",
)

KEY_EXPOSURE: Final[dict[str, tuple[str, ...]]] = {
    "direct": ("yes", "yes", "yes, if it was saved", "no (no server)", "no (no server)"),
    "encrypted-storage": (
        "yes, once unlocked",
        "yes, once unlocked",
        "only by cracking the password",
        "no (no server)",
        "no (no server)",
    ),
    "session-keys": (
        "yes, during the session",
        "yes, during the session",
        "no, once expired",
        "no (no server)",
        "no (no server)",
    ),
    "byok-kms": (
        "no, only as it is typed in",
        "no, only as it is typed in",
        "no",
        "only through the KMS, audited",
        "no: ciphertext only",
    ),
    "bff": (
        "no, only as it is typed in",
        "no, only as it is typed in",
        "no",
        "yes",
        "no, if sealed at rest",
    ),
    "token-proxy": (
        "a short-lived token only",
        "a short-lived token only",
        "an expired token only",
        "yes",
        "no: token hashes only",
    ),
}
