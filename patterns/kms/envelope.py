"""Envelope encryption: seal a secret under a fresh data key wrapped by a customer key.

Two layers, each authenticated with the same *encryption context*:

1. the KMS wraps a per-secret 256-bit data key under the customer-managed key (the context is
   bound there by the backend: AES-GCM associated data locally, key derivation in Vault
   transit, ``EncryptionContext`` in AWS KMS);
2. the secret itself is encrypted locally with AES-256-GCM (``cryptography``'s ``AESGCM``)
   under the data key, with the context as associated data.

The customer key never leaves the KMS and the KMS never sees the secret. The sealed string
stores the wrapped data key and the ciphertext, never the context: the caller presents the
context again to unseal, which is what makes a sealed value useless in another tenant's row.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patterns.errors import ConfigurationError, DecryptionError
from patterns.keys import ApiKey
from patterns.kms.protocol import (
    DATA_KEY_BYTES,
    EncryptionContext,
    KeyRef,
    Kms,
    canonical_context,
    parse_wrapped,
)

__all__ = ["SEALED_PREFIX", "describe_sealed", "rewrap", "seal", "unseal", "unseal_api_key"]

#: Every sealed value starts with this, so a scanner or a migration can recognise it.
SEALED_PREFIX: Final = "kms1."
_NONCE_BYTES: Final = 12  # 96-bit random nonce; one data key encrypts one secret
_AAD_LABEL: Final = b"patterns.kms/v1\x00"
_MAX_SECRET_BYTES: Final = 64 * 1024

_OPAQUE: Final = (
    "cannot unseal: the encryption context differs from the one used to seal, or the stored "
    "value is damaged or not a sealed value; check the context, and if it is right, ask the "
    "user to enter their key again"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(context: EncryptionContext) -> bytes:
    return _AAD_LABEL + canonical_context(context)


def _split(sealed: str) -> tuple[bytes, bytes]:
    """Return (wrapped data key, nonce + ciphertext) or raise one opaque DecryptionError."""
    if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
        raise DecryptionError(_OPAQUE)
    parts = sealed[len(SEALED_PREFIX) :].split(".")
    try:
        if len(parts) != 2:
            raise ValueError("wrong number of parts")
        wrapped, body = _unb64(parts[0]), _unb64(parts[1])
    except (ValueError, binascii.Error) as error:
        raise DecryptionError(_OPAQUE) from error
    if len(body) <= _NONCE_BYTES + 16:
        raise DecryptionError(_OPAQUE)
    return wrapped, body


def seal(secret: str | ApiKey, kms: Kms, key_id: str, context: EncryptionContext) -> str:
    """Encrypt ``secret`` under a fresh data key wrapped by ``key_id``; return a sealed string.

    The plaintext data key is used once and dropped (Python cannot wipe ``bytes``; it is
    unreferenced as soon as this returns). Store the returned string; it holds no secret.
    """
    value = secret.reveal() if isinstance(secret, ApiKey) else secret
    if not isinstance(value, str) or not value:
        raise ConfigurationError("seal() needs a non-empty str or ApiKey to protect")
    data = value.encode("utf-8")
    if len(data) > _MAX_SECRET_BYTES:
        raise ConfigurationError(f"seal() protects secrets up to {_MAX_SECRET_BYTES} bytes")
    aad = _aad(context)  # validates the context before any KMS call
    data_key = kms.generate_data_key(key_id, context)
    if len(data_key.plaintext) != DATA_KEY_BYTES:
        raise ConfigurationError("the KMS returned a data key that is not 256 bits")
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(data_key.plaintext).encrypt(nonce, data, aad)
    return f"{SEALED_PREFIX}{_b64(data_key.wrapped)}.{_b64(nonce + ciphertext)}"


def _framed_key(wrapped: bytes, expected_key_id: str | None) -> None:
    """Parse the frame (malformed input fails before any KMS round trip) and, when the caller
    knows which customer key the tenant uses, refuse a value that names another one."""
    try:
        ref, _native = parse_wrapped(wrapped)
    except DecryptionError:
        raise DecryptionError(_OPAQUE) from None
    if expected_key_id is not None and ref.key_id != expected_key_id:
        raise DecryptionError(_OPAQUE)


def unseal(
    sealed: str, kms: Kms, context: EncryptionContext, *, expected_key_id: str | None = None
) -> str:
    """Return the secret inside ``sealed``; the context must be the one used to seal it.

    Raises :class:`DecryptionError` for tampering, a wrong context, malformed input or (with
    ``expected_key_id``) a value wrapped by another customer key: one message for all, so
    nothing can be probed. Raises :class:`KmsError` when the customer key is disabled,
    destroyed or unreachable.
    """
    aad = _aad(context)
    wrapped, body = _split(sealed)
    _framed_key(wrapped, expected_key_id)
    try:
        data_key = kms.decrypt_data_key(wrapped, context)
    except DecryptionError:
        raise DecryptionError(_OPAQUE) from None  # one message, whichever layer refused
    try:
        plaintext = AESGCM(data_key).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as error:
        raise DecryptionError(_OPAQUE) from error
    return plaintext.decode("utf-8")


def unseal_api_key(
    sealed: str, kms: Kms, context: EncryptionContext, *, expected_key_id: str | None = None
) -> ApiKey:
    """Like :func:`unseal`, but return an :class:`ApiKey` so the value never prints."""
    return ApiKey(unseal(sealed, kms, context, expected_key_id=expected_key_id))


def rewrap(
    sealed: str, kms: Kms, context: EncryptionContext, *, expected_key_id: str | None = None
) -> str:
    """Move ``sealed`` to the newest version of its customer key.

    Only the wrapped data key changes, and the KMS re-wraps it internally (Vault ``rewrap``,
    AWS ``ReEncrypt``): neither the data key nor the secret is ever returned to the caller.
    The encrypted secret is kept byte for byte.
    """
    _aad(context)
    wrapped, body = _split(sealed)
    _framed_key(wrapped, expected_key_id)
    try:
        new_wrapped = kms.rewrap_data_key(wrapped, context)
    except DecryptionError:
        raise DecryptionError(_OPAQUE) from None
    return f"{SEALED_PREFIX}{_b64(new_wrapped)}.{_b64(body)}"


def describe_sealed(sealed: str) -> KeyRef:
    """Return which customer key and version wrapped the data key of ``sealed``.

    Safe to log: it reads only the frame, never decrypts. Use it to find the secrets that
    still need :func:`rewrap` after a rotation.
    """
    wrapped, _ = _split(sealed)
    try:
        ref, _native = parse_wrapped(wrapped)
    except DecryptionError:
        raise DecryptionError(_OPAQUE) from None
    return ref
