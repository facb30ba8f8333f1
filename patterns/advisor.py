"""Choosing a pattern: the guide's risk assessment and recommendations matrix, as data.

The source guide asks four questions before any implementation (data sensitivity, user base,
compliance needs, infrastructure constraints) and gives a matrix of use cases. Here both are
data, and :func:`recommend` turns a filled-in :class:`RiskAssessment` into a pattern with the
reasons for it, warnings, and the alternatives worth a look. Two questions the guide leaves
implicit are asked too, because they change the answer: whose key it is (the user's own, or
the organisation's) and whether the client is a web page or a mobile app.

The decision never recommends shipping an organisation's key to a client: no encryption
hides a key from the machine that must use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from html import escape
from typing import Final

__all__ = [
    "ACTORS",
    "KEY_EXPOSURE",
    "PATTERNS",
    "RECOMMENDATIONS_MATRIX",
    "Compliance",
    "DataSensitivity",
    "Infrastructure",
    "KeyOwner",
    "Level",
    "MatrixRow",
    "PatternProfile",
    "Platform",
    "Recommendation",
    "RiskAssessment",
    "UserBase",
    "recommend",
]


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


class DataSensitivity(StrEnum):
    PUBLIC = "public"  # demo content, nothing about people
    INTERNAL = "internal"  # company-internal, not personal
    CONFIDENTIAL = "confidential"  # customers' data, trade secrets
    REGULATED = "regulated"  # health, payment or other regulated records


class UserBase(StrEnum):
    JUST_ME = "just-me"  # a personal tool or a prototype
    TEAM = "team"  # an internal tool for known colleagues
    PUBLIC = "public"  # anyone on the internet can sign up
    ENTERPRISE = "enterprise"  # business customers with their own security teams


class Compliance(StrEnum):
    GDPR = "gdpr"
    HIPAA = "hipaa"
    SOC2 = "soc2"


class Infrastructure(StrEnum):
    CLIENT_ONLY = "client-only"  # a static site or a notebook: nothing runs server-side
    SERVERLESS = "serverless"  # functions at the edge or in the cloud, no long-lived server
    FULL_STACK = "full-stack"  # servers, a database, room for Redis or a KMS


class KeyOwner(StrEnum):
    USER = "user"  # bring your own key (BYOK): each user pays with their own key
    ORGANISATION = "organisation"  # one key of the company behind the app


class Platform(StrEnum):
    WEB = "web"
    MOBILE = "mobile"


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


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The answers to the guide's four questions, plus whose key it is and the platform."""

    data_sensitivity: DataSensitivity = DataSensitivity.INTERNAL
    user_base: UserBase = UserBase.TEAM
    compliance: frozenset[Compliance] = field(default_factory=frozenset)
    infrastructure: Infrastructure = Infrastructure.FULL_STACK
    key_owner: KeyOwner = KeyOwner.USER
    platform: Platform = Platform.WEB

    @classmethod
    def from_answers(
        cls,
        *,
        data_sensitivity: str = "internal",
        user_base: str = "team",
        compliance: Iterable[str] = (),
        infrastructure: str = "full-stack",
        key_owner: str = "user",
        platform: str = "web",
    ) -> RiskAssessment:
        """Build an assessment from plain strings (a form, a widget, a config file)."""
        return cls(
            DataSensitivity(data_sensitivity),
            UserBase(user_base),
            frozenset(Compliance(c) for c in compliance),
            Infrastructure(infrastructure),
            KeyOwner(key_owner),
            Platform(platform),
        )


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The pattern to use, why, what to watch out for, and what else fits."""

    pattern: PatternProfile
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    also_consider: tuple[PatternProfile, ...] = ()

    def as_markdown(self) -> str:
        """A short report: the pattern, linked to its notebook, then reasons and warnings."""
        lines = [f"**Recommended: [{self.pattern.title}]({self.pattern.notebook})**", ""]
        lines += [f"- {reason}" for reason in self.reasons]
        if self.warnings:
            lines += ["", "**Watch out:**", ""]
            lines += [f"- ⚠️ {warning}" for warning in self.warnings]
        if self.also_consider:
            others = ", ".join(f"[{p.title}]({p.notebook})" for p in self.also_consider)
            lines += ["", f"Also consider: {others}."]
        return "\n".join(lines)

    def as_html(self) -> str:
        """The same report as HTML, for widgets (links are relative to the notebooks)."""

        def link(profile: PatternProfile) -> str:
            return f'<a href="{escape(profile.notebook)}">{escape(profile.title)}</a>'

        parts = [f"<p><b>Recommended: {link(self.pattern)}</b></p>", "<ul>"]
        parts += [f"<li>{escape(reason)}</li>" for reason in self.reasons]
        parts.append("</ul>")
        if self.warnings:
            parts.append("<p><b>Watch out:</b></p><ul>")
            parts += [f"<li>⚠️ {escape(warning)}</li>" for warning in self.warnings]
            parts.append("</ul>")
        if self.also_consider:
            others = ", ".join(link(p) for p in self.also_consider)
            parts.append(f"<p>Also consider: {others}.</p>")
        return "".join(parts)

    def as_text(self) -> str:
        """The same report as plain text."""
        lines = [f"Recommended: {self.pattern.title} ({self.pattern.notebook})"]
        lines += [f"  why: {reason}" for reason in self.reasons]
        lines += [f"  watch out: {warning}" for warning in self.warnings]
        if self.also_consider:
            lines.append("  also consider: " + ", ".join(p.title for p in self.also_consider))
        return "\n".join(lines)


_STRICT_COMPLIANCE: Final = frozenset({Compliance.HIPAA, Compliance.SOC2})


def _pick(pattern_id: str, reasons: list[str], warnings: list[str], *others: str) -> Recommendation:
    return Recommendation(
        PATTERNS[pattern_id],
        tuple(reasons),
        tuple(warnings),
        tuple(PATTERNS[other] for other in others),
    )


def recommend(assessment: RiskAssessment) -> Recommendation:
    """Return the pattern that fits ``assessment``, with reasons a reviewer can check.

    The rules, in order: an organisation's key never goes to a client; strict compliance,
    regulated data or enterprise customers call for customer-managed keys behind a server;
    public and mobile apps keep keys server-side; small internal audiences may keep a
    user's own key in the client, encrypted or in memory only.
    """
    warnings: list[str] = []
    if Compliance.GDPR in assessment.compliance:
        warnings.append(
            "GDPR concerns the personal data in prompts more than the key: minimise what "
            "you send and record the processing; keep logs free of prompt content."
        )
    if assessment.key_owner is KeyOwner.ORGANISATION:
        return _organisation_key(assessment, warnings)
    if assessment.infrastructure is Infrastructure.CLIENT_ONLY:
        return _user_key_without_server(assessment, warnings)
    return _user_key_with_server(assessment, warnings)


def _organisation_key(a: RiskAssessment, warnings: list[str]) -> Recommendation:
    reasons = ["it is your organisation's key: no client may ever hold it"]
    if a.infrastructure is Infrastructure.CLIENT_ONLY:
        warnings.append(
            "a client-only app cannot hide an organisation key: anyone who loads the "
            "page can copy it. Add at least one server-side function before launch."
        )
    if a.user_base in {UserBase.JUST_ME, UserBase.TEAM} and a.platform is Platform.WEB:
        reasons.append(
            "developers and internal clients keep the official SDK, pointed at a proxy, "
            "with tokens that expire in minutes"
        )
        return _pick("token-proxy", reasons, warnings, "bff")
    reasons.append("users sign in to your server, which calls the API on their behalf")
    if a.platform is Platform.MOBILE:
        reasons.append("a mobile binary is public: sign users in with OAuth + PKCE")
    return _pick("bff", reasons, warnings, "token-proxy")


def _strict(a: RiskAssessment) -> frozenset[Compliance]:
    return a.compliance & _STRICT_COMPLIANCE


def _user_key_with_server(a: RiskAssessment, warnings: list[str]) -> Recommendation:
    reasons: list[str] = []
    regulated = a.data_sensitivity is DataSensitivity.REGULATED
    if _strict(a) or regulated or a.user_base is UserBase.ENTERPRISE:
        if _strict(a):
            names = ", ".join(sorted(c.name for c in _strict(a)))
            reasons.append(f"{names} audits expect customer-controlled keys and an audit trail")
        if regulated:
            reasons.append("regulated data calls for keys the customer can revoke")
        if a.user_base is UserBase.ENTERPRISE:
            reasons.append("enterprise customers ask to hold the key that protects their key")
        reasons.append("run it behind a backend-for-frontend so the key never reaches the client")
        return _pick("byok-kms", reasons, warnings, "bff")
    if a.user_base is UserBase.PUBLIC:
        reasons.append("strangers' pages can carry XSS you did not write: keep keys off them")
    if a.platform is Platform.MOBILE:
        reasons.append("a mobile app is a public client: sign in with OAuth + PKCE")
    if a.data_sensitivity is DataSensitivity.CONFIDENTIAL:
        reasons.append("confidential data deserves server-side limits and audit logs")
    if reasons:
        reasons.append("a server is available, so the key can stay on it")
        return _pick("bff", reasons, warnings, "byok-kms")
    return _user_key_in_client(a, warnings)


def _user_key_without_server(a: RiskAssessment, warnings: list[str]) -> Recommendation:
    exposed = (
        _strict(a)
        or a.data_sensitivity in {DataSensitivity.CONFIDENTIAL, DataSensitivity.REGULATED}
        or a.user_base in {UserBase.PUBLIC, UserBase.ENTERPRISE}
        or a.platform is Platform.MOBILE
    )
    if not exposed:
        return _user_key_in_client(a, warnings)
    warnings.append(
        "for this audience or data the guide recommends a backend-for-frontend: any XSS "
        "during a session exposes the key. Plan a server, and ship a strict CSP meanwhile."
    )
    if _strict(a):
        warnings.append("compliance audits will expect server-side audit logs")
    reasons = ["without a server, the safest client-side choice is to persist nothing"]
    return _pick("session-keys", reasons, warnings, "bff")


def _user_key_in_client(a: RiskAssessment, warnings: list[str]) -> Recommendation:
    if a.user_base is UserBase.TEAM:
        reasons = [
            "known colleagues and internal data: the guide's 'internal tools' row",
            "encrypted at rest, so a lost laptop or a synced profile leaks nothing",
        ]
        return _pick("encrypted-storage", reasons, warnings, "session-keys", "bff")
    reasons = ["a personal tool or a prototype: keep the key in memory and let it expire"]
    return _pick("session-keys", reasons, warnings, "encrypted-storage", "direct")
