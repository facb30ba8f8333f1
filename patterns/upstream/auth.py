"""Who is calling: the API key (``x-api-key`` or ``Authorization: Bearer``) and the version.

Keys are compared by their SHA-256 digests with :func:`hmac.compare_digest`, and the
stand-in keeps digests only, so neither timing nor a memory dump of the limiter or the log
gives a key away. Error messages are the real API's and never repeat what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.requests import Request

from patterns.keys import ApiKey
from patterns.scanning import redact
from patterns.upstream.envelope import UpstreamError
from patterns.upstream.settings import KNOWN_API_VERSIONS

__all__ = ["KeyRing", "check_version"]


class KeyRing:
    """The accepted keys, held as digests."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._digests = tuple(
            (hashlib.sha256(key.reveal().encode()).digest(), key.fingerprint) for key in keys
        )

    def authenticate(self, request: Request) -> str:
        """Return the caller's key fingerprint, or raise 401 ``authentication_error``."""
        presented = request.headers.get("x-api-key", "").strip()
        if not presented:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                presented = token.strip()
        if not presented:
            raise UpstreamError(401, "x-api-key header is required")
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for candidate, key_id in self._digests:  # no early exit: same work for every key
            if hmac.compare_digest(candidate, digest):
                found = key_id
        if found is None:
            raise UpstreamError(401, "invalid x-api-key")
        return found

    @property
    def fingerprints(self) -> list[str]:
        return [key_id for _, key_id in self._digests]

    def accept(self, key: ApiKey) -> None:
        """Start accepting ``key`` as well (the Console's "create key")."""
        entry = (hashlib.sha256(key.reveal().encode()).digest(), key.fingerprint)
        if entry not in self._digests:
            self._digests = (*self._digests, entry)  # one assignment: readers see old or new

    def revoke(self, fingerprint: str) -> bool:
        """Stop accepting the key with this fingerprint (the Console's "revoke"); True if it
        was accepted. Requests already past authentication finish; every later one gets 401."""
        kept = tuple(entry for entry in self._digests if entry[1] != fingerprint)
        revoked = len(kept) != len(self._digests)
        self._digests = kept
        return revoked


def check_version(request: Request) -> str:
    """The ``anthropic-version`` header, or 400 when it is missing or unknown."""
    version = request.headers.get("anthropic-version", "").strip()
    if not version:
        raise UpstreamError(400, "anthropic-version: header is required")
    if version not in KNOWN_API_VERSIONS:
        shown = redact(version[:40])
        raise UpstreamError(400, f'anthropic-version: "{shown}" is not a valid version')
    return version
