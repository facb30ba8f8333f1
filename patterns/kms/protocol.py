"""The contract every key-management backend meets, and the small types it speaks in.

A backend holds *customer-managed keys* (CMKs) that never leave it. The application asks it
for a fresh data key per secret and stores only the data key's wrapped form; to read the
secret later it asks the backend to unwrap that data key. Everything a backend returns or
raises is typed here, so :mod:`patterns.kms.envelope` works with LocalKms, Vault/OpenBao
transit and AWS KMS alike.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlsplit

from patterns.errors import ConfigurationError, DecryptionError
from patterns.scanning import find_secrets

__all__ = [
    "DATA_KEY_BYTES",
    "DataKey",
    "EncryptionContext",
    "KeyInfo",
    "KeyRef",
    "Kms",
    "canonical_context",
    "frame_wrapped",
    "parse_wrapped",
    "require_tls",
]

#: AES-256: the data key that encrypts one secret.
DATA_KEY_BYTES: Final = 32

EncryptionContext = Mapping[str, str]

_FRAME_MAGIC: Final = b"pkw1"
_MAX_CONTEXT_ITEMS: Final = 16
_MAX_CONTEXT_CHARS: Final = 256


class DataKey(NamedTuple):
    """A fresh data key: use ``plaintext`` once, keep only ``wrapped``.

    A two-field tuple so that ``plaintext, wrapped = kms.generate_data_key(...)`` reads like the
    KMS APIs it mirrors (AWS ``GenerateDataKey``, Vault ``datakey/plaintext``). Its repr hides
    the plaintext so that a data key printed by accident does not leak.
    """

    plaintext: bytes
    wrapped: bytes

    def __repr__(self) -> str:
        hidden, wrapped = len(self.plaintext), len(self.wrapped)
        return f"DataKey(plaintext=<{hidden} bytes hidden>, wrapped=<{wrapped} bytes>)"


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Which customer key (and which version of it) wrapped a data key.

    ``version`` is None where the backend does not expose versions (AWS KMS rotates backing
    keys internally and picks the right one on Decrypt).
    """

    key_id: str
    version: int | None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The state of one customer key, as the backend reports it."""

    key_id: str
    name: str
    latest_version: int | None
    min_decryption_version: int | None
    enabled: bool
    backend: str
    destroyed: bool = False


@runtime_checkable
class Kms(Protocol):
    """A key-management service that wraps data keys under customer-managed keys.

    Every method that touches a data key takes the *encryption context*: a small dict of
    non-secret strings (tenant, user, purpose) that the backend binds to the wrapped key, so a
    wrapped key copied to another tenant's row cannot be unwrapped there. Failures raise
    :class:`~patterns.errors.KmsError` (key disabled, destroyed, unknown, backend down) or
    :class:`~patterns.errors.DecryptionError` (tampered data or the wrong context).
    """

    @property
    def backend(self) -> str:
        """A short name for logs and audit lines: ``local``, ``vault``, ``aws``."""
        ...

    def create_key(self, name: str) -> str:
        """Create a customer key and return its id."""
        ...

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        """Return a fresh 256-bit data key and its wrapped form under the key's newest version."""
        ...

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        """Unwrap a data key; the context must equal the one it was wrapped with."""
        ...

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        """Re-wrap a data key under the newest key version without returning its plaintext."""
        ...

    def rotate_key(self, key_id: str) -> int | None:
        """Add a new key version used for new data keys; old versions still decrypt."""
        ...

    def disable_key(self, key_id: str) -> None:
        """Refuse every use of the key until it is enabled again (reversible)."""
        ...

    def enable_key(self, key_id: str) -> None:
        """Undo :meth:`disable_key`."""
        ...

    def destroy_key(self, key_id: str) -> None:
        """Delete the key material for good: everything it wrapped becomes unreadable."""
        ...

    def key_info(self, key_id: str) -> KeyInfo:
        """Report the key's versions and state."""
        ...


def canonical_context(context: EncryptionContext) -> bytes:
    """Return the context as canonical bytes (sorted keys, compact JSON, UTF-8).

    The same dict must always give the same bytes, because these bytes are authenticated at
    both layers. The context is stored and logged in clear (AWS CloudTrail logs it too), so it
    must hold identifiers, never secrets: a key-shaped value is refused.
    """
    if not isinstance(context, Mapping) or not context:
        raise ConfigurationError(
            "an encryption context is required: pass a non-empty dict such as "
            "{'tenant': 'acme', 'user': 'u-42'}"
        )
    if len(context) > _MAX_CONTEXT_ITEMS:
        raise ConfigurationError(f"an encryption context holds at most {_MAX_CONTEXT_ITEMS} items")
    for name, value in context.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name or not value:
            raise ConfigurationError("encryption context keys and values must be non-empty str")
        if len(name) + len(value) > _MAX_CONTEXT_CHARS:
            raise ConfigurationError(
                f"encryption context item {name[:32]!r} is too long (max {_MAX_CONTEXT_CHARS})"
            )
        if find_secrets(value, include_fakes=True) or find_secrets(name, include_fakes=True):
            # Never echo the value: it is key-shaped.
            raise ConfigurationError(
                f"encryption context item {name[:32]!r} looks like a secret; the context is "
                "logged in clear, so use identifiers (tenant id, user id), never keys"
            )
    ordered = dict(sorted(context.items()))
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def frame_wrapped(ref: KeyRef, native: bytes) -> bytes:
    """Prefix a backend's native wrapped key with the key id and version that made it.

    The frame lets the application pass the key id back on decrypt (AWS recommends pinning
    ``KeyId``; Vault needs the key name in the URL) and lets the audit log name the version.
    It is not trusted for security: the backend authenticates the native part.
    """
    header = json.dumps({"k": ref.key_id, "v": ref.version}, separators=(",", ":")).encode()
    return _FRAME_MAGIC + len(header).to_bytes(2, "big") + header + native


def parse_wrapped(wrapped: bytes) -> tuple[KeyRef, bytes]:
    """Split a framed wrapped key into its :class:`KeyRef` and the backend's native bytes."""
    try:
        if not wrapped.startswith(_FRAME_MAGIC):
            raise ValueError("no frame")
        size = int.from_bytes(wrapped[4:6], "big")
        header = json.loads(wrapped[6 : 6 + size].decode("utf-8"))
        native = wrapped[6 + size :]
        key_id, version = header["k"], header["v"]
        if not isinstance(key_id, str) or not (version is None or isinstance(version, int)):
            raise TypeError("bad frame fields")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise DecryptionError(
            "cannot decrypt: the wrapped data key is malformed (it was truncated or modified)"
        ) from error
    if not native:
        raise DecryptionError("cannot decrypt: the wrapped data key is empty")
    return KeyRef(key_id, version), native


def require_tls(
    url: str, *, service: str, allow_insecure: bool = False, exposes: str = "data keys"
) -> None:
    """Refuse a plain-http KMS endpoint unless it is on this machine.

    A KMS answers with plaintext data keys, so anything between the app and the KMS must not
    see the traffic. Loopback (a dev server, moto) is allowed; anything else needs https, or
    an explicit ``allow_insecure=True`` (a private network you have decided to trust).
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(f"{service} URL must be http(s)://host[:port]")
    if parts.scheme == "https" or allow_insecure:
        return
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"{service} at {host} over plain http would expose {exposes} on the network: "
            "use https (or allow_insecure=True for a network you trust)"
        )
