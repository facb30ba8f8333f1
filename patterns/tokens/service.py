"""The temporary-token service: mint, redeem (one use at a time), revoke.

The guide's ``TemporaryTokenService`` keeps the raw API key and the raw token in a ``Map``,
increments its counter after a separate check (two concurrent requests can both pass), and
schedules a timer per token. Here the store does check-and-count in one atomic step, keeps
only a hash of each token, refers to the API key by name, and expires records without
timers. The service holds the rules (limits, bounds, clock); stores hold the records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from patterns.errors import InvalidRequestError, TokenRejected, TokenScopeError
from patterns.keys import ApiKey
from patterns.tokens.model import (
    TOKEN_RE,
    Grant,
    Minted,
    Rejection,
    TokenRecord,
    hash_token,
    new_token,
    new_token_id,
)

__all__ = ["REJECTED_MESSAGE", "TokenService", "TokenStore"]

_MAX_TTL: Final = 24 * 3600.0
_MAX_USES: Final = 1_000_000
_MAX_ID_LENGTH: Final = 256


class TokenStore(Protocol):
    """What :class:`TokenService` needs from a store (memory or Redis)."""

    def add(self, token_hash: str, record: TokenRecord, now: float) -> None: ...

    def consume(
        self,
        token_hash: str,
        now: float,
        model: str | None,
        max_tokens: int | None,
        current_ref: str | None = None,
    ) -> TokenRecord | Rejection:
        """Check and count one use atomically; "revoked" also when ``current_ref`` (the ref
        the caller serves tokens it holds no key for with) is a revoked key ref."""
        ...

    def get(self, token_id: str) -> TokenRecord | None: ...

    def revoke(self, token_id: str) -> bool: ...

    def revoke_user(self, user_id: str) -> int: ...

    def issued_to(self, user_id: str, now: float) -> bool:
        """Whether the store issued ``user_id`` a token within its retention, or holds a
        live one: "revoked 0" then means "nothing left", not "never knew that user"."""
        ...


REJECTED_MESSAGE: Final = (
    "the temporary token is not valid (unknown, expired, revoked or used up); ask your "
    "application for a new one"
)


class TokenService:
    """Mints short-lived, usage-limited, optionally scoped tokens and redeems them.

    ``ttl`` is in seconds and ``clock`` returns seconds since the epoch (inject a fake clock
    to fast-forward expiry). ``key_ref`` names the API key the proxy should use for the
    tokens this service mints (a :class:`~patterns.tokens.keyring.Keyring` keeps it on its
    current key); redemption refuses every token while that ref is revoked.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        ttl: float = 900,
        max_uses: int = 100,
        clock: Callable[[], float] = time.time,
        key_ref: str = "default",
    ) -> None:
        self.store = store
        self.ttl = _bounded_ttl(ttl)
        self.max_uses = _bounded_uses(max_uses)
        self.clock = clock
        self.key_ref = key_ref

    def mint(
        self,
        user_id: str,
        *,
        ttl: float | None = None,
        max_uses: int | None = None,
        models: Iterable[str] | None = None,
        max_tokens: int | None = None,
    ) -> Minted:
        """Create a token for ``user_id``; the token itself is in the result and nowhere else."""
        _check_identifier("user_id", user_id)
        ttl = self.ttl if ttl is None else _bounded_ttl(ttl)
        uses = self.max_uses if max_uses is None else _bounded_uses(max_uses)
        scope = None if models is None else tuple(models)
        if scope is not None and (not scope or not all(isinstance(m, str) and m for m in scope)):
            raise InvalidRequestError("models must be a non-empty list of model ids, or omitted")
        if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise InvalidRequestError("max_tokens must be a positive integer, or omitted")
        now = self.clock()
        token, token_id = new_token(), new_token_id()
        record = TokenRecord(
            token_id=token_id,
            user_id=user_id,
            created_at=now,
            expires_at=now + ttl,
            max_uses=uses,
            models=scope,
            max_tokens=max_tokens,
            key_ref=self.key_ref,
        )
        self.store.add(hash_token(token), record, now)
        return Minted(token, token_id, user_id, record.expires_at, uses, scope, max_tokens)

    def redeem(
        self, token: str | ApiKey, *, model: str | None = None, max_tokens: int | None = None
    ) -> Grant:
        """Consume one use of ``token`` for a request for ``model`` and ``max_tokens``.

        Raises :class:`TokenRejected` (unknown, expired, revoked, used up) or its subclass
        :class:`TokenScopeError` (model or max_tokens outside the token's scope; no use is
        consumed). The exception's ``reason`` attribute says which, for the audit log.
        """
        value = token.reveal() if isinstance(token, ApiKey) else token
        if not isinstance(value, str) or not TOKEN_RE.match(value):
            raise _rejected("unknown")  # not even shaped like a token: no store round trip
        result = self.store.consume(
            hash_token(value), self.clock(), model, max_tokens, self.key_ref
        )
        if isinstance(result, str):
            raise _rejected(result)
        return Grant.from_record(result)

    def status(self, token_id: str) -> TokenRecord | None:
        """The record behind a token id (uses so far, expiry, scope), or None."""
        return self.store.get(token_id)

    def revoke(self, token_id: str) -> bool:
        """Revoke one token by its id; True if it was live."""
        return self.store.revoke(token_id)

    def revoke_user(self, user_id: str) -> int:
        """Revoke every live token of ``user_id``; returns how many."""
        return self.store.revoke_user(user_id)

    def issued_to(self, user_id: str) -> bool:
        """Whether a token was issued to ``user_id`` within the store's retention (30 days
        by default), or one is live: the proxy's per-user revoke answers it as ``known``."""
        return self.store.issued_to(user_id, self.clock())

    def user_known(self, user_id: str) -> bool:
        """:func:`~patterns.lifecycle.incidents.user_key_leaked` asks this when it revoked
        nothing: an in-process service that never issued ``user_id`` a token makes the step
        "not verified", as a remote proxy's ``known: false`` does."""
        return self.issued_to(user_id)


def _rejected(reason: Rejection) -> TokenRejected:
    if reason in ("model", "max_tokens"):
        error: TokenRejected = TokenScopeError(
            f"the temporary token does not allow this request ({reason.replace('_', ' ')} "
            "outside its scope)"
        )
    else:
        error = TokenRejected(REJECTED_MESSAGE)
    error.reason = reason  # type: ignore[attr-defined]
    return error


def _bounded_ttl(ttl: float) -> float:
    if not isinstance(ttl, int | float) or not 0 < ttl <= _MAX_TTL:
        raise InvalidRequestError(f"ttl must be between 0 and {_MAX_TTL:.0f} seconds")
    return float(ttl)


def _bounded_uses(uses: int) -> int:
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= _MAX_USES:
        raise InvalidRequestError(f"max_uses must be an integer from 1 to {_MAX_USES}")
    return uses


def _check_identifier(name: str, value: str) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_ID_LENGTH
        or not value.isprintable()
    ):
        raise InvalidRequestError(f"{name} must be 1 to {_MAX_ID_LENGTH} printable characters")
