"""Temporary tokens: their format, what a store keeps about them, and what callers get back.

A token is 256 bits from :mod:`secrets`, URL-safe, behind the prefix ``akp_tmp_`` so that
secret scanners (ours included) recognise a leaked one. Stores key tokens by their SHA-256
only: a dump of the store gives an attacker hashes of 256-bit random values, which are of
no use. (A slow password hash would add nothing here: nobody can guess 256 random bits.)
The real API key is never stored with a token; a record names it by ``key_ref``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, replace
from typing import Final, Literal

__all__ = [
    "DEFAULT_USER_RETENTION",
    "TOKEN_PREFIX",
    "TOKEN_RE",
    "Grant",
    "Minted",
    "Rejection",
    "TokenRecord",
    "hash_token",
    "new_token",
    "new_token_id",
]

TOKEN_PREFIX: Final = "akp_tmp_"  # noqa: S105 - a public prefix, not a secret
TOKEN_RE: Final = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")

#: How long a store remembers that it issued a token to a user (seconds; never less than the
#: token's own lifetime). Incident response asks it, to tell "revoked 0 tokens" from "this
#: proxy never knew that user" (a mistyped id, or the wrong proxy).
DEFAULT_USER_RETENTION: Final = 30 * 24 * 3600.0

#: Why a store refused a token. The proxy tells clients only "invalid token" (401) or
#: "outside its scope" (403); the reason goes to the audit log.
Rejection = Literal["unknown", "expired", "revoked", "exhausted", "model", "max_tokens"]


def new_token() -> str:
    """A fresh token: the prefix plus 32 random bytes, base64url without padding."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    """A public identifier for revocation and audit: not a secret, never accepted as a token."""
    return "tok_" + secrets.token_hex(12)


def hash_token(token: str) -> str:
    """The key a store files a token under (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What a store keeps about one token. It holds no secret."""

    token_id: str
    user_id: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int = 0
    revoked: bool = False
    models: tuple[str, ...] | None = None
    max_tokens: int | None = None
    key_ref: str = "default"

    def check(self, now: float, model: str | None, max_tokens: int | None) -> Rejection | None:
        """Why this token may not be used now for this request, or None if it may.

        The Redis store runs the same rules in Lua; a shared contract test keeps them equal.
        """
        if self.revoked:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        if self.uses >= self.max_uses:
            return "exhausted"
        if self.models is not None and model not in self.models:
            return "model"
        if self.max_tokens is not None and max_tokens is not None and max_tokens > self.max_tokens:
            return "max_tokens"
        return None

    def consumed(self) -> TokenRecord:
        return replace(self, uses=self.uses + 1)

    def to_fields(self) -> dict[str, str]:
        """Flat string fields, as a Redis hash stores them."""
        return {
            "token_id": self.token_id,
            "user_id": self.user_id,
            "created_at": repr(self.created_at),
            "expires_at": repr(self.expires_at),
            "max_uses": str(self.max_uses),
            "uses": str(self.uses),
            "revoked": "1" if self.revoked else "0",
            "models": json.dumps(list(self.models)) if self.models is not None else "",
            "max_tokens": str(self.max_tokens) if self.max_tokens is not None else "",
            "key_ref": self.key_ref,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> TokenRecord:
        models = fields.get("models", "")
        max_tokens = fields.get("max_tokens", "")
        return cls(
            token_id=fields["token_id"],
            user_id=fields["user_id"],
            created_at=float(fields["created_at"]),
            expires_at=float(fields["expires_at"]),
            max_uses=int(fields["max_uses"]),
            uses=int(fields["uses"]),
            revoked=fields.get("revoked") == "1",
            models=tuple(json.loads(models)) if models else None,
            max_tokens=int(max_tokens) if max_tokens else None,
            key_ref=fields.get("key_ref", "default"),
        )


@dataclass(frozen=True, slots=True)
class Minted:
    """A new token, returned once to whoever asked for it. Only its hash is kept."""

    token: str
    token_id: str
    user_id: str
    expires_at: float
    max_uses: int
    models: tuple[str, ...] | None
    max_tokens: int | None

    def __repr__(self) -> str:  # never show the token itself
        return (
            f"Minted(token_id={self.token_id!r}, user_id={self.user_id!r}, "
            f"expires_at={self.expires_at!r}, max_uses={self.max_uses})"
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """The right to make one call: who, with which key, and what is left afterwards."""

    token_id: str
    user_id: str
    key_ref: str
    uses: int
    max_uses: int
    expires_at: float
    models: tuple[str, ...] | None
    max_tokens: int | None

    @property
    def remaining(self) -> int:
        return self.max_uses - self.uses

    @classmethod
    def from_record(cls, record: TokenRecord) -> Grant:
        return cls(
            record.token_id,
            record.user_id,
            record.key_ref,
            record.uses,
            record.max_uses,
            record.expires_at,
            record.models,
            record.max_tokens,
        )
