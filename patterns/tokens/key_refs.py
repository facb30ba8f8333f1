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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["KeyRefRegistry", "KeyRefs", "KeyStatus", "Rollover", "utc"]


@dataclass(frozen=True, slots=True)
class KeyRefs:
    """A snapshot of a registry: refs minted under, and refs revoked (never a key)."""

    known: frozenset[str] = field(default_factory=frozenset)
    revoked: frozenset[str] = field(default_factory=frozenset)


class KeyRefRegistry(Protocol):
    """Shared record of key refs. Writes are idempotent (set union) and never removed: a
    revoked ref stays revoked, so a leaked key cannot come back by any route."""

    def key_refs(self) -> KeyRefs: ...

    def record_key_refs(
        self, *, known: Iterable[str] = (), revoked: Iterable[str] = ()
    ) -> None: ...


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
