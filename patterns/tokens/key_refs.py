"""What the replicas of a token proxy must agree on about the organisation key, and reports.

A token record names the key it was minted under by ``key_ref`` (``org-1a2b3c4d``). Each
replica's :class:`~patterns.tokens.keyring.Keyring` holds the keys it was given, but two
facts must be shared, or a replica decides alone and wrongly:

* **known refs**: refs some replica minted tokens under. A replica that holds no key for a
  known ref (not reloaded yet, or started after the rollover) serves its tokens with its own
  current key; a ref nobody registered (forged into the store, or from another deployment)
  is refused.
* **revoked refs**: refs revoked by a leak response. They must outlive the process that
  revoked them: a replica restarted, or started for the first time, after the leak must
  refuse those tokens too, and must refuse to start with the leaked key.

A :class:`KeyRefRegistry` keeps both. The token stores are registries
(:class:`~patterns.tokens.redis_store.RedisTokenStore` in Redis,
:class:`~patterns.tokens.memory.MemoryTokenStore` in memory): revocations live next to the
tokens they refuse, so they have the same reach and the same lifetime, and the store refuses
a token of a revoked ref in the same atomic step that counts its use.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from patterns.errors import StoreUnavailable
from patterns.keys import ApiKey

__all__ = [
    "KeyRefRegistry",
    "KeyRefs",
    "KeyStatus",
    "KeyVersion",
    "RegistryReader",
    "Rollover",
    "utc",
]


@dataclass(frozen=True, slots=True)
class KeyRefs:
    """A snapshot of a registry: refs minted under, and refs revoked (never a key)."""

    known: frozenset[str] = field(default_factory=frozenset)
    revoked: frozenset[str] = field(default_factory=frozenset)


@runtime_checkable
class KeyRefRegistry(Protocol):
    """Shared record of key refs. Writes are idempotent (set union) and never removed: a
    revoked ref stays revoked, so a leaked key cannot come back by any route."""

    def key_refs(self) -> KeyRefs: ...

    def record_key_refs(
        self, *, known: Iterable[str] = (), revoked: Iterable[str] = ()
    ) -> None: ...


class RegistryReader:
    """Reads a registry for one keyring: at most every ``refresh`` seconds unless forced, and
    after a failed read, with ``back_off``, refuses for ``retry_after`` seconds without a
    round trip (fail closed and fast: a slow store must not make every request wait on it).
    Not locked: the keyring calls it under its own lock."""

    def __init__(self, registry: KeyRefRegistry, *, refresh: float, retry_after: float) -> None:
        self.registry = registry
        self._refresh = refresh
        self._retry_after = retry_after
        self._read_at: float | None = None
        self._failed_at: float | None = None  # monotonic time of the last failed read

    def read(self, *, force: bool, back_off: bool) -> KeyRefs | None:
        """The registry's refs, or None when the last read is recent enough."""
        started = time.monotonic()
        if not force and self._read_at is not None and started - self._read_at < self._refresh:
            return None
        failed = self._failed_at
        if back_off and failed is not None and started - failed < self._retry_after:
            raise StoreUnavailable(
                "the token store (key-ref registry) could not be read a moment ago; "
                "requests are refused until it answers again"
            )
        try:
            shared = self.registry.key_refs()
        except StoreUnavailable:
            self._failed_at = time.monotonic()
            raise
        self._failed_at = None
        self._read_at = started
        return shared


def utc(timestamp: float) -> str:
    """``2026-11-30T12:00:00Z``: how reports print a time."""
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """One version of the organisation key, as a report shows it (no secret)."""

    ref: str
    fingerprint: str
    added_at: float
    state: str  # "current", "grace", "retired" or "revoked"
    retire_at: float | None


@dataclass(slots=True)
class KeyVersion:
    """One version a keyring holds (mutable, under the keyring's lock)."""

    ref: str
    key: ApiKey | None  # None once retired or revoked: the old key is not kept in memory
    fingerprint: str
    added_at: float
    retire_at: float | None = None
    revoked: bool = False

    def status(self, *, current: bool) -> KeyStatus:
        if current:
            state = "current"
        elif self.revoked:
            state = "revoked"
        elif self.key is not None:
            state = "grace"
        else:
            state = "retired"
        return KeyStatus(self.ref, self.fingerprint, self.added_at, state, self.retire_at)


@dataclass(frozen=True, slots=True)
class Rollover:
    """What a rollover did."""

    changed: bool
    current_ref: str
    current_fingerprint: str
    previous: tuple[KeyStatus, ...]
    revoked_refs: tuple[str, ...]
    delete_old_key_after: float | None  # when the proxy stops sending the old key
    rolled_over: bool = False  # a new key became current in this call

    def lines(self) -> list[str]:
        """Human-readable report lines (fingerprints only)."""
        if not self.changed:
            return [f"nothing to do: {self.current_ref} ({self.current_fingerprint}) is current"]
        out = []
        if self.rolled_over:
            out.append(f"new tokens use {self.current_ref} ({self.current_fingerprint})")
        held = {status.ref for status in self.previous}
        # Refs this replica held no key for: other replicas' versions, tokens from before the
        # keyring ("default").
        out.extend(f"{ref}: its tokens are refused" for ref in self.revoked_refs if ref not in held)
        for status in self.previous:
            if status.state == "revoked" and status.ref in self.revoked_refs:
                out.append(f"{status.ref} ({status.fingerprint}) revoked: its tokens are refused")
            elif status.state == "grace" and status.retire_at is not None:
                out.append(
                    f"{status.ref} ({status.fingerprint}) serves its tokens until "
                    f"{utc(status.retire_at)}; delete it in the Anthropic Console after that"
                )
        return out
