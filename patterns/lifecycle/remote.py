"""Talk to a running token proxy's issuer-guarded admin routes (for the CLI commands).

The issuer secret comes from ``PATTERNS_TOKEN_ISSUER_SECRET``, as for ``serve
token-proxy``: never from the command line, which other users of the machine can read.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from patterns.errors import ConfigurationError
from patterns.kms.protocol import require_tls
from patterns.lifecycle.incidents import IncidentReport, leak_steps, normalise_fingerprint

__all__ = [
    "RemoteUserTokens",
    "org_key_leaked_remote",
    "reload_org_key",
    "revoke_user_tokens",
    "revoke_user_tokens_known",
    "shown",
]


def _issuer() -> dict[str, str]:
    # Imported here: patterns.tokens.cli loads the proxy app (FastAPI), which a lifecycle
    # command that only talks HTTP to a proxy does not need.
    from patterns.tokens.cli import ISSUER_VARIABLE

    secret = os.environ.get(ISSUER_VARIABLE, "").strip()
    if not secret:
        raise ConfigurationError(f"set {ISSUER_VARIABLE} to the proxy's issuer secret")
    return {"authorization": f"Bearer {secret}"}


def _call(method: str, url: str, **options: Any) -> dict[str, Any]:
    require_tls(url, service="the token proxy", exposes="the issuer secret")
    try:
        response = httpx.request(method, url, headers=_issuer(), timeout=30.0, **options)
    except httpx.HTTPError as error:
        raise ConfigurationError(f"cannot reach the token proxy: {type(error).__name__}") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}"
        raise ConfigurationError(f"the token proxy refused: {message}")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ConfigurationError(
            f"the answer from {shown(url)} is not a JSON object: is it the token proxy?"
        )
    return payload


def shown(url: str) -> str:
    """``url`` for a report: scheme, host, port and path, never a password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def reload_org_key(proxy: str, *, grace: float, revoke_previous: bool) -> dict[str, Any]:
    """``POST /admin/org-key/reload``: the proxy re-reads its key file and rolls over."""
    body = {"grace_seconds": grace, "revoke_previous": revoke_previous}
    return _call("POST", f"{proxy.rstrip('/')}/admin/org-key/reload", json=body)


def org_key_leaked_remote(proxy: str, *, leaked: str) -> IncidentReport:
    """:func:`~patterns.lifecycle.incidents.org_key_leaked` against a running proxy. Put the
    new key in the proxy's key file first. ``leaked`` is the leaked key's fingerprint
    (``sha256:1a2b3c4d``, normalised): the report is "contained" only if the proxy's current
    key is not that one and the proxy lists that version as revoked. A reload that changed
    nothing (the file still holds the leaked key, or a mistyped fingerprint) fails."""
    leaked = normalise_fingerprint(leaked)
    result = reload_org_key(proxy, grace=0, revoke_previous=True)
    current = result["current"]
    report = IncidentReport("org-key-leaked", f"proxy {shown(proxy)}")
    report.steps.extend(
        leak_steps(
            leaked,
            rolled_over=bool(result["rolled_over"]),
            current_ref=str(current["ref"]),
            current_fingerprint=str(current["fingerprint"]),
            revoked=[str(ref) for ref in result["revoked"]],
            versions=[
                (str(v["ref"]), str(v["fingerprint"]), str(v["state"]))
                for v in result.get("versions", [])
            ],
        )
    )
    report.manual.append("revoke the leaked key in the Anthropic Console (Settings > API keys)")
    return report


def revoke_user_tokens_known(proxy: str, user_id: str) -> tuple[int, bool | None]:
    """``DELETE /users/{user}/tokens``: how many live tokens were revoked, and whether the
    proxy knew the user (None: its answer does not say, a proxy from before ``known``)."""
    result = _call("DELETE", f"{proxy.rstrip('/')}/users/{quote(user_id, safe='')}/tokens")
    revoked, known = result.get("revoked"), result.get("known")
    if isinstance(revoked, bool) or not isinstance(revoked, int) or revoked < 0:
        raise ConfigurationError(
            f"the answer from {shown(proxy)} has no count of revoked tokens: is it the token proxy?"
        )
    return revoked, known if isinstance(known, bool) else None


def revoke_user_tokens(proxy: str, user_id: str) -> int:
    """``DELETE /users/{user}/tokens``: how many live tokens were revoked."""
    return revoke_user_tokens_known(proxy, user_id)[0]


class RemoteUserTokens:
    """:class:`~patterns.lifecycle.incidents.UserTokens` over a running proxy's API, and
    :class:`~patterns.lifecycle.incidents.KnowsUsers` from its answers' ``known``, so a
    proxy that never issued the user a token (a mistyped id, the wrong ``--proxy``) makes
    the response "not verified"."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy
        self._answers: dict[str, list[bool | None]] = {}  # user -> each answer's "known"

    def shown(self) -> str:
        """The proxy's URL for a report, without a password it may carry."""
        return shown(self.proxy)

    def revoke_user(self, user_id: str) -> int:
        revoked, known = revoke_user_tokens_known(self.proxy, user_id)
        self._answers.setdefault(user_id, []).append(known)
        return revoked

    def user_known(self, user_id: str) -> bool | None:
        """Whether an answer to :meth:`revoke_user` said the proxy knew ``user_id``; None
        before any. Raises :class:`ConfigurationError` when an answer did not say (an
        older proxy) and none said yes: fail closed, not "known"."""
        answers = self._answers.get(user_id)
        if not answers:
            return None
        if True in answers:
            return True
        if None in answers:
            raise ConfigurationError(
                f"the token proxy at {shown(self.proxy)} does not say whether it knew user "
                f"{user_id!r} (its answer has no 'known': a version from before it); upgrade "
                "it, or look for token_minted events of this user in its audit log"
            )
        return False
