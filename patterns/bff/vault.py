"""The key vault: a user's Anthropic key is sealed with Pattern 3 before it touches storage.

:func:`patterns.kms.seal` encrypts the key under a fresh data key wrapped by a customer key
in the KMS, with the encryption context ``{"app": "bff", "purpose": "anthropic-api-key",
"user": <username>}``. The store keeps only the sealed string and the fingerprint: a
database dump yields ciphertext, and a sealed value copied into another user's row fails to
unseal because the context names the owner (the row-swap attack of notebook 04).

Unsealing costs a KMS round trip (about 0.6 ms with :class:`~patterns.kms.LocalKms`, a
network call with Vault or AWS). A small per-process cache keeps the unsealed key for
``key_cache_seconds``, indexed by the SHA-256 of the *sealed value*: the cache is only
consulted after the store still returns that exact value, so a deleted or replaced key is
never used again, on any replica. The price, said plainly: a plaintext key stays in this
process's memory up to that long, and disabling the customer key in the KMS takes effect
after it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio.to_thread

from patterns.bff.stores import KeyRecord, KeyStore
from patterns.errors import DecryptionError, InvalidKeyError
from patterns.keys import ApiKey
from patterns.kms import Kms, LocalKms, seal, unseal_api_key

__all__ = ["KEY_NAME", "KeyVault", "ephemeral_kms", "key_context"]

#: The customer key's name in the KMS.
KEY_NAME: Final = "bff-user-keys"
_MAX_CACHED: Final = 10_000


def key_context(username: str) -> dict[str, str]:
    """The encryption context that binds a sealed key to its owner."""
    return {"app": "bff", "purpose": "anthropic-api-key", "user": username}


def ephemeral_kms() -> tuple[LocalKms, str]:
    """A LocalKms in a fresh temporary directory with a random master key, and a customer key.

    The default of ``create_app``: nothing to configure, and nothing survives the process
    (the master key exists only in memory). Production passes a real KMS.
    """
    directory = Path(tempfile.mkdtemp(prefix="bff-kms-"))
    kms = LocalKms(directory / "keys.json", master_key=os.urandom(32))
    return kms, kms.create_key(KEY_NAME)


class KeyVault:
    """Seal, store, fetch and unseal users' keys. The only place the BFF handles a raw key."""

    def __init__(
        self,
        store: KeyStore,
        kms: Kms,
        key_id: str,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._kms = kms
        self._key_id = key_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    @property
    def kms(self) -> Kms:
        return self._kms

    async def put(self, username: str, api_key: ApiKey) -> str:
        """Seal and store ``api_key`` for ``username``; return its fingerprint."""
        sealed = await anyio.to_thread.run_sync(
            lambda: seal(api_key, self._kms, self._key_id, key_context(username))
        )
        await self._store.put(username, KeyRecord(sealed, api_key.fingerprint))
        return api_key.fingerprint

    async def record(self, username: str) -> KeyRecord | None:
        return await self._store.get(username)

    async def delete(self, username: str) -> bool:
        return await self._store.delete(username)

    async def key_for(self, username: str) -> tuple[ApiKey, str] | None:
        """The user's key and fingerprint, or None when none is stored.

        Raises :class:`DecryptionError` when the stored value does not open for this user
        (tampered, or copied from another user's row).
        """
        record = await self._store.get(username)
        if record is None:
            return None
        digest = hashlib.sha256(f"{username}\x00{record.sealed}".encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now < cached[0]:
            return cached[1], record.fingerprint
        key = await anyio.to_thread.run_sync(
            lambda: unseal_api_key(record.sealed, self._kms, key_context(username))
        )
        if key.fingerprint != record.fingerprint:
            raise DecryptionError("the stored key does not match its fingerprint; save it again")
        if self._cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[digest] = (now + self._cache_seconds, key)
        return key, record.fingerprint

    def forget_cached(self) -> None:
        """Drop every unsealed key held by this process."""
        with self._lock:
            self._cache.clear()


def parse_api_key(value: object) -> ApiKey:
    """An ``ApiKey`` from request JSON; refuses what is not key-shaped, never echoing it."""
    if not isinstance(value, str) or not 20 <= len(value) <= 512:
        raise InvalidKeyError("api_key must be the key string from the Anthropic Console")
    key = ApiKey(value)
    if key.kind != "api03":
        # Admin keys (sk-ant-admin01-) cannot call Messages and would make this server hold
        # an organisation-admin credential; OAuth tokens expire within hours.
        raise InvalidKeyError("api_key must be an Anthropic API key (it starts with sk-ant-api03-)")
    return key
