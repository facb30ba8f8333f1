"""The in-process token store: the default for notebooks, tests and a single server.

Expired records are dropped lazily from a heap ordered by expiry, on every write and
redemption: no timer per token (the guide's ``setTimeout`` per token leaks timers and dies
with the process), and O(log n) work per operation.

It is also the :class:`~patterns.tokens.key_refs.KeyRefRegistry` of a single-process proxy:
its tokens die with the process, and so do the key refs it records, which is exactly as
long as those refs can matter.

It remembers which users it issued tokens to (:meth:`MemoryTokenStore.issued_to`), for
``user_retention`` seconds after their last token and at most ``max_users`` of them (the
oldest are forgotten first): incident response tells "nothing left to revoke" from "never
knew that user" with it, and a forgotten user reads as unknown, which fails closed.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterable

from patterns.tokens.key_refs import KeyRefs
from patterns.tokens.model import DEFAULT_USER_RETENTION, Rejection, TokenRecord

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore:
    """Token records in a dict behind one lock. Not shared between processes: use
    :class:`~patterns.tokens.redis_store.RedisTokenStore` behind a load balancer."""

    def __init__(
        self, *, user_retention: float = DEFAULT_USER_RETENTION, max_users: int = 100_000
    ) -> None:
        if not user_retention > 0 or max_users < 1:
            raise ValueError("user_retention must be positive and max_users at least 1")
        self._retention = float(user_retention)
        self._max_users = max_users
        self._issued: OrderedDict[str, float] = OrderedDict()  # user -> until, soonest first
        self._lock = threading.Lock()
        self._records: dict[str, TokenRecord] = {}  # token hash -> record
        self._by_id: dict[str, str] = {}  # token id -> token hash
        self._by_user: dict[str, set[str]] = {}  # user id -> token ids
        self._expiry: list[tuple[float, str]] = []  # (expires_at, token hash)
        self._known_refs: set[str] = set()
        self._revoked_refs: set[str] = set()

    def add(self, token_hash: str, record: TokenRecord, now: float) -> None:
        with self._lock:
            self._drop_expired(now)
            self._records[token_hash] = record
            self._by_id[record.token_id] = token_hash
            self._by_user.setdefault(record.user_id, set()).add(record.token_id)
            heapq.heappush(self._expiry, (record.expires_at, token_hash))
            # Moved to the end: the order stays "forgotten soonest first" (one retention).
            user = record.user_id
            until = max(self._issued.get(user, now), now + self._retention, record.expires_at)
            self._issued[user] = until
            self._issued.move_to_end(user)
            while len(self._issued) > self._max_users:
                self._issued.popitem(last=False)

    def consume(
        self,
        token_hash: str,
        now: float,
        model: str | None,
        max_tokens: int | None,
        current_ref: str | None = None,
    ) -> TokenRecord | Rejection:
        """Check and count one use in a single step; return the updated record or why not.
        "revoked" too when the token's key ref or ``current_ref`` is a revoked ref."""
        with self._lock:
            record = self._records.get(token_hash)
            result: TokenRecord | Rejection
            if record is None:
                result = "unknown"
            else:
                reason: Rejection | None = (
                    "revoked"  # minted under an organisation key revoked after a leak
                    if record.key_ref in self._revoked_refs or current_ref in self._revoked_refs
                    else record.check(now, model, max_tokens)
                )
                result = record.consumed() if reason is None else reason
                if reason is None:
                    self._records[token_hash] = record.consumed()
            self._drop_expired(now)  # after the check, so an expired token says "expired"
            return result

    def get(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            token_hash = self._by_id.get(token_id)
            return self._records.get(token_hash) if token_hash else None

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            return self._revoke(token_id)

    def revoke_user(self, user_id: str) -> int:
        with self._lock:
            return sum(self._revoke(token_id) for token_id in self._by_user.pop(user_id, set()))

    def issued_to(self, user_id: str, now: float) -> bool:
        """Whether a token was issued to ``user_id`` within the retention, or one is live."""
        with self._lock:
            self._drop_expired(now)
            return self._issued.get(user_id, now) > now or user_id in self._by_user

    def key_refs(self) -> KeyRefs:
        with self._lock:
            return KeyRefs(frozenset(self._known_refs), frozenset(self._revoked_refs))

    def record_key_refs(self, *, known: Iterable[str] = (), revoked: Iterable[str] = ()) -> None:
        with self._lock:
            self._known_refs.update(known)
            self._revoked_refs.update(revoked)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def dump(self) -> dict[str, dict[str, str]]:
        """Everything the store holds, as an attacker with a memory dump would see it."""
        with self._lock:
            return {h: record.to_fields() for h, record in self._records.items()}

    def _revoke(self, token_id: str) -> bool:
        token_hash = self._by_id.get(token_id)
        record = self._records.get(token_hash) if token_hash else None
        if token_hash is None or record is None or record.revoked:
            return False
        self._records[token_hash] = TokenRecord.from_fields({**record.to_fields(), "revoked": "1"})
        return True

    def _drop_expired(self, now: float) -> None:
        while self._issued and next(iter(self._issued.values())) <= now:
            self._issued.popitem(last=False)
        while self._expiry and self._expiry[0][0] <= now:
            _, token_hash = heapq.heappop(self._expiry)
            record = self._records.pop(token_hash, None)
            if record is not None:
                self._by_id.pop(record.token_id, None)
                ids = self._by_user.get(record.user_id)
                if ids is not None:
                    ids.discard(record.token_id)
                    if not ids:
                        del self._by_user[record.user_id]
