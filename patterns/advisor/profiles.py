"""The six patterns the notebooks teach, each with its ratings, pros and cons.

Kept apart from the decision so the notebooks and the questionnaire can show the catalogue
without the rules, and the rules can name a pattern by id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

__all__ = ["PATTERNS", "Level", "PatternProfile"]


class Level(IntEnum):
    """An ordered rating, as the guide's matrix uses for security, complexity and UX."""

    LOW = 1
    MEDIUM = 2
    GOOD = 3
    HIGH = 4
    VERY_HIGH = 5
    EXCELLENT = 6

    def __str__(self) -> str:
        return self.name.replace("_", " ").title()


@dataclass(frozen=True, slots=True)
class PatternProfile:
    """What a pattern is, where it is taught, and what it costs and buys."""

    id: str
    title: str
    notebook: str
    summary: str
    security: Level
    complexity: Level
    user_experience: Level
    pros: tuple[str, ...]
    cons: tuple[str, ...]


PATTERNS: Final[dict[str, PatternProfile]] = {
    profile.id: profile
    for profile in (
        PatternProfile(
            id="direct",
            title="Direct browser call",
            notebook="01-direct-browser-access.ipynb",
            summary="The page calls the API itself with the user's key and the "
            "anthropic-dangerous-direct-browser-access header.",
            security=Level.LOW,
            complexity=Level.LOW,
            user_experience=Level.EXCELLENT,
            pros=("no server to build or run", "the user's key pays, the user's limits apply"),
            cons=(
                "every script on the page and every extension can read the key",
                "no usage controls or monitoring on your side",
                "hard to rotate: the key lives wherever the user pasted it",
            ),
        ),
        PatternProfile(
            id="encrypted-storage",
            title="Encrypted client-side storage",
            notebook="02-encrypted-storage.ipynb",
            summary="The key is stored in the browser encrypted with a key derived from a "
            "password (PBKDF2 or Argon2id, AES-GCM) and unlocked per session.",
            security=Level.MEDIUM,
            complexity=Level.LOW,
            user_experience=Level.GOOD,
            pros=(
                "a stolen disk or synced profile yields ciphertext only",
                "no server needed",
            ),
            cons=(
                "a script that runs while the key is unlocked can still read it",
                "only as strong as the user's password",
                "a forgotten password means entering the key again",
            ),
        ),
        PatternProfile(
            id="session-keys",
            title="In-memory session key",
            notebook="03-session-key-manager.ipynb",
            summary="The key is kept in memory only, wiped after an idle timeout and an "
            "absolute lifetime.",
            security=Level.MEDIUM,
            complexity=Level.LOW,
            user_experience=Level.GOOD,
            pros=(
                "nothing persists: a device left behind holds no key after expiry",
                "the simplest BYOK that is not careless",
            ),
            cons=(
                "the key is exposed to XSS while the session lasts",
                "the user re-enters the key every session",
            ),
        ),
        PatternProfile(
            id="byok-kms",
            title="BYOK with a KMS (envelope encryption)",
            notebook="04-byok-kms-envelope.ipynb",
            summary="Server-side, each key is sealed with a fresh data key wrapped by a "
            "customer-managed key in a KMS; every use is audited; revoking the customer "
            "key makes the data unreadable.",
            security=Level.VERY_HIGH,
            complexity=Level.VERY_HIGH,
            user_experience=Level.GOOD,
            pros=(
                "the customer controls, audits and can revoke access to their key",
                "a database dump yields ciphertext only",
                "rotation without re-encrypting every secret",
            ),
            cons=(
                "a KMS to run or pay for, per customer",
                "the server still sees the key while it uses it",
            ),
        ),
        PatternProfile(
            id="bff",
            title="Backend-for-frontend",
            notebook="05-backend-for-frontend.ipynb",
            summary="The browser holds only an HttpOnly session cookie; the server keeps the "
            "key, validates requests and forwards them.",
            security=Level.HIGH,
            complexity=Level.HIGH,
            user_experience=Level.GOOD,
            pros=(
                "the key never reaches the browser",
                "per-user rate limits, usage records and a model allowlist",
                "rotation and revocation in one place",
            ),
            cons=(
                "a server to build, secure and run",
                "XSS can still use the session while it lasts (but cannot take the key)",
            ),
        ),
        PatternProfile(
            id="token-proxy",
            title="Proxy with temporary tokens",
            notebook="06-temporary-token-proxy.ipynb",
            summary="An auth service mints short-lived, usage-limited tokens; a proxy "
            "accepts them in place of the real key.",
            security=Level.HIGH,
            complexity=Level.MEDIUM,
            user_experience=Level.GOOD,
            pros=(
                "a leaked token expires in minutes and is capped in uses",
                "clients keep using the official SDK, pointed at the proxy",
                "the organisation key never leaves the server",
            ),
            cons=("a token service and a shared store to run", "tokens still leak like keys"),
        ),
    )
}
