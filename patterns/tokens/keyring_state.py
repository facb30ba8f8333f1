"""What a :class:`~patterns.tokens.keyring.Keyring` holds and how it keeps up with replicas.

The versions this replica holds, the refs other replicas registered or revoked (read from the
registry at most every ``refresh`` seconds), and writing this replica's own refs back. Split
from the keyring's public side (lookups, rollover) so each can be read on its own; every
method here runs with the keyring's lock held. Logs go to the keyring's logger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from patterns.errors import ConfigurationError
from patterns.keys import ApiKey
from patterns.tokens.key_refs import KeyRefRegistry, KeyStatus, KeyVersion, RegistryReader

__all__ = ["KeyringState"]

log = logging.getLogger("patterns.tokens.keyring")


class KeyringState:
    """A keyring's versions and its view of the registry (the arguments are
    :class:`~patterns.tokens.keyring.Keyring`'s). Not thread-safe on its own: the keyring
    calls it under ``_lock``."""

    _current: str  # the ref new tokens are minted under; set by the keyring

    def __init__(
        self,
        *,
        name: str,
        clock: Callable[[], float],
        legacy_refs: Iterable[str],
        registry: KeyRefRegistry | None,
        refresh: float,
        retry_after: float,
    ) -> None:
        if not name.isidentifier():
            raise ConfigurationError("a keyring name must be a short identifier such as 'org'")
        self._name = name
        self._prefix = f"{name}-"
        self._legacy = frozenset(legacy_refs)
        self._legacy_revoked = False
        self._clock = clock
        self._refresh, self._retry_after = refresh, retry_after
        self._reader = (
            None
            if registry is None
            else RegistryReader(registry, refresh=refresh, retry_after=retry_after)
        )
        self._published = False
        self._foreign: set[str] = set()  # registered by other replicas, no key held here
        self._revoked_elsewhere: set[str] = set()  # revoked refs this keyring never held
        self._lock = threading.Lock()
        self._versions: dict[str, KeyVersion] = {}

    # -- internals (lock held) ----------------------------------------------------------
    def _join_registry(self) -> None:
        """Refuse a registry that may lose revocations (``check_durability``: Redis under
        an evicting policy), take its state, refuse a revoked current key, publish."""
        if self._reader is None:
            return
        check = getattr(self._reader.registry, "check_durability", None)
        if callable(check):
            check()  # raises ConfigurationError; its warnings are the caller's to show
        self._sync(force=True)
        current = self._versions[self._current]
        if current.revoked:
            raise ConfigurationError(
                f"the organisation key {current.fingerprint} was revoked after a leak; write "
                "a new key (created in the Console) to the key file"
            )
        self._publish()

    def _ref_of(self, key: ApiKey) -> str:
        return self._prefix + key.fingerprint.removeprefix("sha256:")

    def _add(self, key: ApiKey) -> str:
        """The ref of ``key`` (its name and fingerprint: the same on every replica), made
        current; a version still in its grace period comes back as it was."""
        ref = self._ref_of(key)
        existing = self._versions.pop(ref, None)
        added_at = existing.added_at if existing is not None else self._clock()
        self._versions[ref] = KeyVersion(ref, key, key.fingerprint, added_at)  # newest last
        self._foreign.discard(ref)
        return ref

    def _sync(self, *, force: bool, back_off: bool = False) -> None:
        """Take the registry's revocations and known refs, at most every ``refresh``
        seconds unless forced. A registry that cannot be read raises: fail closed; with
        ``back_off``, within ``retry_after`` of a failed read it raises without trying."""
        shared = None if self._reader is None else self._reader.read(force=force, back_off=back_off)
        if shared is None:
            return
        for ref in shared.revoked:
            version = self._versions.get(ref)
            if version is not None:
                if not version.revoked:
                    version.revoked, version.key = True, None
            elif ref in self._legacy:
                self._legacy_revoked = True
            else:
                self._revoked_elsewhere.add(ref)
        self._foreign = {
            ref
            for ref in shared.known
            if ref.startswith(self._prefix)
            and ref not in self._versions
            and ref not in self._revoked_elsewhere
        }
        if self._published and (
            self._current not in shared.known or not self._revoked_refs() <= shared.revoked
        ):
            # Refs are never removed: the store lost them (evicted, or restarted without
            # persistence). Write back what this replica knows; see docs/lifecycle.md.
            log.error(
                "keyring %s: the token store lost key refs this replica wrote (eviction, or "
                "a restart without persistence?); writing them back",
                self._name,
            )
            self._publish()

    def _revoked_refs(self) -> set[str]:
        revoked = {v.ref for v in self._versions.values() if v.revoked}
        revoked |= self._revoked_elsewhere
        if self._legacy_revoked:
            revoked |= self._legacy
        return revoked

    def _publish(self) -> None:
        """Write this replica's current ref and every revocation it knows to the registry
        (idempotent: a rerun after a failed write completes it)."""
        if self._reader is None:
            return
        self._published = False  # until the write succeeds: a failed one is not a "loss"
        revoked = sorted(self._revoked_refs())
        self._reader.registry.record_key_refs(known=[self._current], revoked=revoked)
        self._published = True

    def _retire_due(self, now: float) -> None:
        for version in self._versions.values():
            if (
                version.key is not None
                and version.retire_at is not None
                and now >= version.retire_at
            ):
                version.key = None  # its tokens now use the current key

    def _status(self, version: KeyVersion) -> KeyStatus:
        return version.status(current=version.ref == self._current)
