"""Optional data-key caching: fewer KMS calls, at a price you should choose knowingly.

Every :func:`~patterns.kms.envelope.seal` costs one KMS call and every unseal another. A busy
service can cache data keys, as the AWS Encryption SDK's caching materials manager does,
bounded by age and by number of uses.

The trade-off: (1) plaintext data keys stay in process memory for up to ``max_age`` seconds;
(2) one data key protects up to ``max_uses`` secrets, so one leaked data key exposes all of
them; (3) disabling or destroying the customer key *in the KMS* takes effect here only when
the cached entries expire (calls made through this wrapper clear the cache at once); (4) the
KMS's own audit trail sees fewer calls. Keep both bounds small; never cache for a tenant that
needs immediate revocation.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from patterns.errors import ConfigurationError
from patterns.kms.protocol import DataKey, EncryptionContext, KeyInfo, Kms, canonical_context

__all__ = ["CacheStats", "CachingKms"]

#: NIST SP 800-38D: at most 2^32 random-nonce AES-GCM encryptions per key.
_GCM_LIMIT: Final = 2**32


@dataclass(slots=True)
class CacheStats:
    """How many data-key requests reached the KMS and how many the cache answered."""

    backend_calls: int = 0
    cache_hits: int = 0

    @property
    def saved_fraction(self) -> float:
        total = self.backend_calls + self.cache_hits
        return self.cache_hits / total if total else 0.0


@dataclass(slots=True)
class _Entry:
    value: DataKey | bytes
    created: float
    uses: int


class CachingKms:
    """Wrap a :class:`Kms` and reuse data keys within ``max_age`` seconds and ``max_uses``."""

    def __init__(
        self,
        kms: Kms,
        *,
        max_age: float,
        max_uses: int,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < max_age <= 3600:
            raise ConfigurationError("max_age must be between 0 and 3600 seconds")
        if not 1 <= max_uses <= _GCM_LIMIT:
            raise ConfigurationError("max_uses must be between 1 and 2**32 (NIST SP 800-38D)")
        if max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1")
        self._kms, self._clock = kms, clock
        self._max_age, self._max_uses, self._max_entries = max_age, max_uses, max_entries
        self._entries: OrderedDict[tuple[str, bytes, bytes], _Entry] = OrderedDict()
        self._lock = threading.Lock()  # web servers share one cache between threads
        self.stats = CacheStats()

    @property
    def backend(self) -> str:
        return self._kms.backend

    def _get(self, slot: tuple[str, bytes, bytes]) -> DataKey | bytes | None:
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return None
            if self._clock() - entry.created >= self._max_age or entry.uses >= self._max_uses:
                self._entries.pop(slot, None)
                return None
            entry.uses += 1
            self.stats.cache_hits += 1
            return entry.value

    def _put(self, slot: tuple[str, bytes, bytes], value: DataKey | bytes) -> None:
        with self._lock:
            self.stats.backend_calls += 1
            self._entries[slot] = _Entry(value, self._clock(), 1)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every cached data key (done on every key-state change made through here)."""
        with self._lock:
            self._entries.clear()

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        slot = ("generate", key_id.encode(), canonical_context(context))
        cached = self._get(slot)
        if isinstance(cached, DataKey):
            return cached
        data_key = self._kms.generate_data_key(key_id, context)
        self._put(slot, data_key)
        return data_key

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        slot = ("decrypt", wrapped, canonical_context(context))
        cached = self._get(slot)
        if isinstance(cached, bytes):
            return cached
        plaintext = self._kms.decrypt_data_key(wrapped, context)
        self._put(slot, plaintext)
        return plaintext

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        return self._kms.rewrap_data_key(wrapped, context)

    def create_key(self, name: str) -> str:
        return self._kms.create_key(name)

    def rotate_key(self, key_id: str) -> int | None:
        self.clear()
        return self._kms.rotate_key(key_id)

    def disable_key(self, key_id: str) -> None:
        self.clear()
        self._kms.disable_key(key_id)

    def enable_key(self, key_id: str) -> None:
        self._kms.enable_key(key_id)

    def destroy_key(self, key_id: str) -> None:
        self.clear()
        self._kms.destroy_key(key_id)

    def key_info(self, key_id: str) -> KeyInfo:
        return self._kms.key_info(key_id)
