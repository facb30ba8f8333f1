"""The decision: a :class:`RiskAssessment` in, a :class:`Recommendation` with reasons out.

The rules live in one place, in the order they apply, so a reviewer can check each reason
against the guide; the report renders the same recommendation as Markdown, HTML or text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Final

from patterns.advisor.assessment import (
    Compliance,
    DataSensitivity,
    Infrastructure,
    KeyOwner,
    Platform,
    RiskAssessment,
    UserBase,
)
from patterns.advisor.profiles import PATTERNS, PatternProfile

__all__ = ["Recommendation", "recommend"]


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
