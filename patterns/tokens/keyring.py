"""The organisation key of the token proxy, with versions: roll it over without a restart.

Tokens do not hold the key; each token record names the key it was minted under by
``key_ref``: the keyring's name and the key's fingerprint (``org-1a2b3c4d``), the same on
every replica that holds the key. A :class:`Keyring` is the proxy's map from those
references to keys (it is a ``Mapping[str, ApiKey]``, so :class:`ProxySettings` takes it
as ``api_keys``), and it changes while the proxy runs:

* **planned rollover** (``rollover(new_key, grace=900)``): new tokens use the new key at
  once; tokens minted before keep the old key until the grace period ends, then move to the
  new key. Both keys must be valid at Anthropic during the grace period; after it the proxy
  never sends the old key again, and the report says when it is safe to delete it in the
  Console. No token fails at any point.
* **leak** (``rollover(new_key, grace=0, revoke_previous=True)``): the old key is dropped at
  once and every token minted under it is refused (401), whatever store holds it: one
  check per request, no scan of the token store.

Replicas agree through a :class:`~patterns.tokens.key_refs.KeyRefRegistry`: the token store
itself (``registry=store``, or bound by :meth:`Keyring.attach` from the service's store), not
the key file, which belongs to the secrets manager (one read-only copy per host, replaced on
rotation). Revoked refs written there reach every replica, outlive restarts, and a replica
started after a leak refuses the old tokens and refuses to start with the leaked key.

What is atomic, exactly: the store's redemption step (one Lua script in Redis, one lock in
memory) refuses the token if its own ref is revoked, or if the ref its service mints under
is (``TokenService.key_ref``, which :meth:`Keyring.attach` keeps on the current key: the key
this replica serves every token it holds no key of its own for). So from the moment a
revocation is written, no redemption on any replica whose service is attached is counted for
a token that would then be forwarded with a revoked key, whatever that replica's view of the
registry (``refresh``). Two windows remain, each one request wide: a request redeemed just
before the revocation was written may still be forwarded with the old key (like a request
already on its way upstream); and a replica that rolls over between a redemption and the key
lookup forwards with its new key, checked against the registry an instant before. The
registry must not lose revocations: :mod:`patterns.tokens.redis_store` says which Redis
settings that needs (checked at start-up); a live keyring that finds refs missing writes
them back.

A ref this keyring holds no key for is served with the current key only if some replica
registered it (a replica not reloaded yet, or one started after a planned rollover);
anything else under the keyring's prefix is refused with 401: fail closed, never "use the
current key for whatever the store says".

A rollover that has nothing to do (the same key, versions already revoked) changes nothing
and says so, so a response script can be run twice. Keys are compared in constant time
and only fingerprints appear in reports and logs.

The versions and the registry view behind all this are :mod:`patterns.tokens.keyring_state`;
the key file and the reload route are :mod:`patterns.tokens.keyring_admin`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from patterns.errors import ConfigurationError, TokenRejected
from patterns.keys import ApiKey
from patterns.tokens.key_refs import (
    KeyRefRegistry,
    KeyRefs,
    KeyStatus,
    RegistryReader,
    Rollover,
)
from patterns.tokens.keyring_admin import ReloadRequest, add_rollover_route, key_file_source
from patterns.tokens.keyring_state import KeyringState

if TYPE_CHECKING:
    from patterns.tokens.service import TokenService

__all__ = [
    "KeyRefRegistry",
    "KeyRefs",
    "KeyStatus",
    "Keyring",
    "ReloadRequest",
    "Rollover",
    "add_rollover_route",
    "key_file_source",
]

log = logging.getLogger("patterns.tokens.keyring")

_REVOKED_MESSAGE: Final = (
    "the temporary token was issued under an organisation key that has been revoked; ask "
    "your application for a new token"
)
_UNKNOWN_MESSAGE: Final = (
    "the temporary token was issued under an organisation key this proxy does not know; ask "
    "your application for a new token"
)


class Keyring(KeyringState, Mapping[str, ApiKey]):
    """Versions of the organisation key; ``get(key_ref)`` picks the key for a token.

    ``clock`` returns seconds since the epoch (inject a fake one to fast-forward the grace
    period). ``source`` re-reads the key from where the operator keeps it (a file, a
    secrets manager) for :meth:`reload`. ``registry`` is where replicas share known and
    revoked refs (the token store; without one, :meth:`attach` binds the service's store,
    and until then this keyring knows only its own versions and refuses every other ref).
    ``refresh`` bounds how stale this replica's view of the registry may be, in seconds;
    after a failed registry read, requests that need one are refused at once for
    ``retry_after`` seconds instead of each waiting on the store (rollovers always try).
    ``legacy_refs`` are refs that tokens minted before the keyring existed carry (a
    :class:`TokenService` mints ``"default"`` unless attached): they are served with the
    current key, so an upgrade breaks no live token.
    Thread-safe. Raises :class:`ConfigurationError` if ``key`` was revoked after a leak, or
    if the registry may lose revocations (Redis under any eviction policy but ``noeviction``).
    """

    def __init__(
        self,
        key: ApiKey,
        *,
        name: str = "org",
        clock: Callable[[], float] = time.time,
        source: Callable[[], ApiKey] | None = None,
        legacy_refs: Iterable[str] = ("default",),
        registry: KeyRefRegistry | None = None,
        refresh: float = 1.0,
        retry_after: float = 1.0,
    ) -> None:
        super().__init__(
            name=name,
            clock=clock,
            legacy_refs=legacy_refs,
            registry=registry,
            refresh=refresh,
            retry_after=retry_after,
        )
        self._source = source
        self._services: list[TokenService] = []
        self._current = self._add(ApiKey(key))
        with self._lock:
            self._join_registry()

    # -- Mapping ------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The key to forward a token's request with, or ``default`` for a ref outside this
        keyring (another keyring's name: a configuration error for the caller).

        Raises :class:`TokenRejected` for a ref revoked after a leak (here or on any replica
        sharing the registry), for a ref under this keyring's prefix that no replica
        registered, and for every token while this replica's own key is revoked.
        """
        with self._lock:
            version = self._versions.get(key)
            mine = version is not None or key.startswith(self._prefix) or key in self._legacy
            if not mine:
                return default
            # A ref not seen before is looked up at once; otherwise the view may be
            # `refresh` seconds old: the store's atomic check covers the token's own ref and
            # this replica's current one, the only keys a token is forwarded with.
            seen = key in self._foreign or key in self._legacy or key in self._revoked_elsewhere
            self._sync(force=version is None and not seen, back_off=True)
            if self._versions[self._current].revoked:
                log.warning(
                    "keyring %s: the current key %s was revoked on another replica; reload "
                    "this replica (POST /admin/org-key/reload)",
                    self._name,
                    self._current,
                )
                raise TokenRejected(_REVOKED_MESSAGE)
            current_key = self._versions[self._current].key
            if version is not None:
                if version.revoked:
                    raise TokenRejected(_REVOKED_MESSAGE)
                self._retire_due(self._clock())
                return version.key or current_key
            if key in self._legacy:
                if self._legacy_revoked:
                    raise TokenRejected(_REVOKED_MESSAGE)
                return current_key
            if key in self._revoked_elsewhere:
                raise TokenRejected(_REVOKED_MESSAGE)
            if key in self._foreign:
                # Minted by a replica that took a newer key first, or under a key this
                # process never held (it started later): this replica's current key.
                return current_key
            log.warning("keyring %s: refused a token under unknown ref %s", self._name, key)
            raise TokenRejected(_UNKNOWN_MESSAGE)

    def __getitem__(self, key: str) -> ApiKey:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter([ref for ref, v in self._versions.items() if not v.revoked])

    def __len__(self) -> int:
        with self._lock:
            return sum(not v.revoked for v in self._versions.values())

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_ref!r}, versions={len(self._versions)})"

    # -- state --------------------------------------------------------------------------
    @property
    def current_ref(self) -> str:
        return self._current

    @property
    def current(self) -> ApiKey:
        with self._lock:
            key = self._versions[self._current].key
        assert key is not None  # the current version always holds its key
        return key

    def status(self) -> list[KeyStatus]:
        """Every version this replica holds, oldest first, with its state now."""
        with self._lock:
            now = self._clock()
            self._retire_due(now)
            return [self._status(v) for v in self._versions.values()]

    def attach(self, service: TokenService) -> None:
        """Make ``service`` mint under the current key, now and after each rollover.

        A keyring built without a registry takes the service's store as its registry (a
        store that is one: memory or Redis), so revocations live where the tokens are
        redeemed; a keyring whose registry is another token store object is refused
        (:class:`ConfigurationError`): its revocations would not reach the redemption step.
        """
        store = service.store
        with self._lock:
            if isinstance(store, KeyRefRegistry):
                if self._reader is None:
                    self._reader = RegistryReader(
                        store, refresh=self._refresh, retry_after=self._retry_after
                    )
                    self._join_registry()
                elif store is not self._reader.registry and hasattr(
                    self._reader.registry, "consume"
                ):
                    raise ConfigurationError(
                        "the keyring records key refs in a different store than the token "
                        "service redeems from; pass the service's store as registry="
                    )
            if service not in self._services:  # idempotent: create_app may attach again
                self._services.append(service)
            service.key_ref = self._current

    # -- changes ------------------------------------------------------------------------
    def rollover(
        self, new_key: ApiKey, *, grace: float = 900.0, revoke_previous: bool = False
    ) -> Rollover:
        """Make ``new_key`` current. Older versions serve their tokens for ``grace`` seconds
        (at most; a shorter earlier deadline is kept), or are revoked at once, together with
        every other ref the registry knows (all replicas' older versions).

        Revocations are written to the registry before the report is returned; if that
        fails (:class:`~patterns.errors.StoreUnavailable`), they still hold here, and
        running the rollover again writes them."""
        if grace < 0:
            raise ConfigurationError("grace must be zero or more seconds")
        new_key = ApiKey(new_key)
        with self._lock:
            self._sync(force=True)  # revocations made on other replicas apply here first
            now = self._clock()
            self._retire_due(now)
            changed = False
            current = self._versions[self._current]
            if not (current.key is not None and current.key == new_key):  # constant time
                if self._ref_of(new_key) in self._revoked_elsewhere or any(
                    v.revoked and v.fingerprint == new_key.fingerprint
                    for v in self._versions.values()
                ):
                    raise ConfigurationError(
                        "this key was revoked after a leak; create a new key in the Console"
                    )
                self._current = self._add(new_key)
                changed = True
            revoked: list[str] = []
            for version in self._versions.values():
                if version.ref == self._current or version.revoked:
                    continue
                if revoke_previous:
                    version.revoked, version.key, version.retire_at = True, None, now
                    revoked.append(version.ref)
                    changed = True
                elif version.key is not None:
                    deadline = now + grace
                    if version.retire_at is None or deadline < version.retire_at:
                        version.retire_at = deadline
            if revoke_previous:
                others = sorted(self._foreign - {self._current})
                self._revoked_elsewhere.update(others)
                self._foreign.difference_update(others)
                revoked.extend(others)
                changed = changed or bool(others)
                if self._legacy and not self._legacy_revoked:
                    self._legacy_revoked = True  # tokens from before the keyring: old key
                    revoked.extend(sorted(self._legacy))
                    changed = True
            self._retire_due(now)
            for service in self._services:
                service.key_ref = self._current
            previous = tuple(
                self._status(v) for v in self._versions.values() if v.ref != self._current
            )
            grace_ends = [
                v.retire_at
                for v in self._versions.values()
                if v.key is not None and v.retire_at is not None and v.ref != self._current
            ]
            report = Rollover(
                changed,
                self._current,
                self._versions[self._current].fingerprint,
                previous,
                tuple(revoked),
                max(grace_ends) if grace_ends else None,
                rolled_over=self._current != current.ref,
            )
            self._publish()
        for line in report.lines():
            log.info("keyring %s: %s", self._name, line)
        return report

    def reload(self, *, grace: float = 900.0, revoke_previous: bool = False) -> Rollover:
        """Read the key again from ``source`` and roll over to it (a no-op if unchanged)."""
        if self._source is None:
            raise ConfigurationError("this keyring has no source to reload the key from")
        return self.rollover(self._source(), grace=grace, revoke_previous=revoke_previous)
