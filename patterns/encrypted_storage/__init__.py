"""Pattern 1: an API key encrypted under the user's password, stored on the client.

>>> from patterns.encrypted_storage import encrypt_api_key, decrypt_api_key
>>> envelope = encrypt_api_key(key, "a long passphrase")  # doctest: +SKIP
>>> decrypt_api_key(envelope, "a long passphrase") == key.reveal()  # doctest: +SKIP
True

What it protects: a copied disk, browser profile, backup or synced storage, as long as the
password is strong (see :mod:`patterns.encrypted_storage.cost`). What it does not: code that
runs in the page or process after the user has unlocked (XSS, a malicious extension) reads
the key like the app does. All cryptography comes from ``cryptography`` (PBKDF2HMAC, Scrypt,
Argon2id, AESGCM); the browser twin is ``patterns/web/encrypted-storage.js`` (Web Crypto).
"""

from __future__ import annotations

from patterns.encrypted_storage.envelope import (
    DECRYPTION_FAILED,
    EnvelopeInfo,
    change_password,
    decrypt_api_key,
    encrypt_api_key,
    inspect_envelope,
    needs_upgrade,
    reencrypt,
)
from patterns.encrypted_storage.kdf import (
    DEFAULT_POLICY,
    KDF_NAMES,
    Argon2idParams,
    KdfName,
    KdfParams,
    Limits,
    Pbkdf2Params,
    Policy,
    ScryptParams,
)
from patterns.encrypted_storage.store import FileStore

__all__ = [
    "DECRYPTION_FAILED",
    "DEFAULT_POLICY",
    "KDF_NAMES",
    "Argon2idParams",
    "EnvelopeInfo",
    "FileStore",
    "KdfName",
    "KdfParams",
    "Limits",
    "Pbkdf2Params",
    "Policy",
    "ScryptParams",
    "change_password",
    "decrypt_api_key",
    "encrypt_api_key",
    "inspect_envelope",
    "needs_upgrade",
    "reencrypt",
]
