"""Seal an API key under a password into a self-describing JSON envelope, and open it again.

The envelope carries everything needed to decrypt except the password: format and version,
the KDF and its parameters, the salt, the IV and the AES-256-GCM ciphertext with its tag.
Forgetting one of them is exactly the source guide's bug (its salt never leaves the function),
so nothing here is optional. The format is specified in ``docs/envelope-format.md`` and
``patterns/web/encrypted-storage.js`` implements the same format with Web Crypto.

Opening fails closed and opaquely: a wrong password, a flipped byte, a wrong
``associated_data``, malformed JSON, an unknown version or KDF, or parameters outside the
policy's limits all raise the same :class:`~patterns.errors.DecryptionError`, with no partial
data and no hint of which check failed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patterns.encrypted_storage.kdf import (
    DEFAULT_POLICY,
    Argon2idParams,
    KdfName,
    KdfParams,
    Pbkdf2Params,
    Policy,
    ScryptParams,
    derive_key,
    params_from_json,
)
from patterns.errors import ConfigurationError, DecryptionError
from patterns.keys import ApiKey

__all__ = [
    "CIPHER",
    "DECRYPTION_FAILED",
    "FORMAT",
    "VERSION",
    "EnvelopeInfo",
    "change_password",
    "decrypt_api_key",
    "encrypt_api_key",
    "inspect_envelope",
    "needs_upgrade",
    "reencrypt",
]

FORMAT: Final = "anthropic-key-patterns/encrypted-api-key"
VERSION: Final = 1
CIPHER: Final = "aes-256-gcm"
SALT_BYTES: Final = 16  # NIST SP 800-132: at least 128 bits
IV_BYTES: Final = 12  # NIST SP 800-38D: 96-bit IVs
TAG_BYTES: Final = 16
MAX_ENVELOPE_CHARS: Final = 8192  # far above any real key; parsing stays cheap
MAX_CIPHERTEXT_BYTES: Final = 2048
_AAD_PREFIX: Final = f"{FORMAT}/v{VERSION}\x00".encode()
_FIELDS: Final = frozenset({"format", "version", "kdf", "cipher", "salt", "iv", "ciphertext"})

DECRYPTION_FAILED: Final = (
    "could not open the encrypted API key: the password is wrong, or the stored envelope was "
    "changed, damaged or made for another user. Try the password again; if it is right, "
    "delete the stored envelope and enter the API key again."
)


@dataclass(frozen=True, slots=True)
class EnvelopeInfo:
    """The public part of an envelope (everything but the ciphertext's content)."""

    version: int
    kdf: KdfParams
    salt: bytes
    iv: bytes
    ciphertext: bytes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: object) -> bytes:
    """Strict base64url without padding: the only accepted spelling of each byte string.

    Python's decoder ignores the unused low bits of the last character, so two spellings
    would decode to the same bytes; re-encoding and comparing makes every change count.
    """
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    if _b64url(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _aad(associated_data: str | None) -> bytes:
    return _AAD_PREFIX + (associated_data or "").encode("utf-8")


def _password_bytes(password: str) -> bytes:
    # NFC so that the same password typed on macOS (often NFD) and elsewhere matches;
    # the JavaScript side does the same with String.prototype.normalize("NFC").
    if not isinstance(password, str):
        raise TypeError("the password must be a str")
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate field")
        result[key] = value
    return result


def _parse(envelope: str | bytes, policy: Policy) -> EnvelopeInfo:
    """Parse and bound-check; raises ValueError or ConfigurationError (callers wrap them)."""
    if isinstance(envelope, bytes):
        envelope = envelope.decode("utf-8")
    if not isinstance(envelope, str) or len(envelope) > MAX_ENVELOPE_CHARS:
        raise ValueError("not an envelope")
    document = json.loads(envelope, object_pairs_hook=_reject_duplicates)
    if not isinstance(document, dict) or set(document) != _FIELDS:
        raise ValueError("unexpected fields")
    version = document["version"]
    if document["format"] != FORMAT or type(version) is not int or version != VERSION:
        raise ValueError("unknown format or version")
    if document["cipher"] != CIPHER:
        raise ValueError("unknown cipher")
    params = params_from_json(document["kdf"])
    if policy.limits.violations(params):
        raise ValueError("KDF parameters outside the accepted limits")
    salt, iv = _unb64url(document["salt"]), _unb64url(document["iv"])
    ciphertext = _unb64url(document["ciphertext"])
    if len(salt) != SALT_BYTES or len(iv) != IV_BYTES:
        raise ValueError("bad salt or IV length")
    if not TAG_BYTES < len(ciphertext) <= MAX_CIPHERTEXT_BYTES:
        raise ValueError("bad ciphertext length")
    if _serialize(params, salt, iv, ciphertext) != envelope.strip():
        # One spelling per envelope (compact JSON, fixed field order), as in the browser:
        # no parser differences, no duplicate fields, and every changed byte is noticed.
        raise ValueError("not in canonical form")
    return EnvelopeInfo(version=version, kdf=params, salt=salt, iv=iv, ciphertext=ciphertext)


def _serialize(params: KdfParams, salt: bytes, iv: bytes, ciphertext: bytes) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": params.to_json(),
        "cipher": CIPHER,
        "salt": _b64url(salt),
        "iv": _b64url(iv),
        "ciphertext": _b64url(ciphertext),
    }
    return json.dumps(document, separators=(",", ":"))


def inspect_envelope(envelope: str | bytes, policy: Policy = DEFAULT_POLICY) -> EnvelopeInfo:
    """Return the envelope's public fields without the password (raises DecryptionError if
    it is malformed or outside ``policy``'s limits)."""
    try:
        return _parse(envelope, policy)
    except Exception:  # every parsing failure is the one opaque error
        raise DecryptionError(DECRYPTION_FAILED) from None


def _seal(
    plaintext: str,
    password: str,
    params: KdfParams,
    *,
    salt: bytes,
    iv: bytes,
    associated_data: str | None,
) -> str:
    """Build an envelope from explicit salt and IV. Private: only the test vectors in
    ``docs/envelope-format.md`` may fix them; everything else uses :func:`encrypt_api_key`."""
    key = derive_key(params, _password_bytes(password), salt)
    ciphertext = AESGCM(key).encrypt(iv, plaintext.encode("utf-8"), _aad(associated_data))
    return _serialize(params, salt, iv, ciphertext)


def encrypt_api_key(
    api_key: str | ApiKey,
    password: str,
    *,
    kdf: KdfName = "pbkdf2-sha256",
    associated_data: str | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> str:
    """Encrypt ``api_key`` under ``password`` and return the JSON envelope.

    A fresh 128-bit salt and 96-bit IV come from ``os.urandom`` on every call, so the same key
    and password never give the same envelope. ``associated_data`` (e.g. ``"user:42"``) is
    authenticated but not stored: the envelope then opens only when the same value is given,
    so one user's envelope copied into another user's record is useless.
    """
    key = ApiKey(api_key)  # validates the key without ever echoing it
    if associated_data is not None and not isinstance(associated_data, str):
        raise TypeError("associated_data must be a str such as 'user:42', or None")
    if not isinstance(password, str) or len(password) < policy.min_password_length:
        raise ConfigurationError(
            f"the password must be at least {policy.min_password_length} characters; "
            "a passphrase of four or more random words is much stronger than a short password"
        )
    params = policy.params_for(kdf)
    return _seal(
        key.reveal(),
        password,
        params,
        salt=os.urandom(SALT_BYTES),
        iv=os.urandom(IV_BYTES),
        associated_data=associated_data,
    )


def decrypt_api_key(
    envelope: str | bytes,
    password: str,
    *,
    associated_data: str | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> str:
    """Open an envelope and return the API key, or raise the one :class:`DecryptionError`.

    The KDF parameters are checked against ``policy.limits`` before any derivation, so a
    hostile envelope costs at most what the limits allow. (A ``password`` that is not a
    ``str`` is a programming error and raises TypeError.)
    """
    secret = _password_bytes(password)
    info = inspect_envelope(envelope, policy)
    try:
        key = derive_key(info.kdf, secret, info.salt)
        plaintext = AESGCM(key).decrypt(info.iv, info.ciphertext, _aad(associated_data))
        return plaintext.decode("utf-8")
    except Exception:  # InvalidTag, bad UTF-8, or a KDF the local OpenSSL lacks: fail closed
        raise DecryptionError(DECRYPTION_FAILED) from None


def needs_upgrade(envelope: str | bytes, policy: Policy = DEFAULT_POLICY) -> bool:
    """True when the envelope's KDF parameters are weaker than ``policy``'s for that KDF.

    Needs no password, so a server can count envelopes still to migrate; the migration itself
    (:func:`reencrypt`) happens the next time the user unlocks.
    """
    info = inspect_envelope(envelope, policy)
    return info.version < VERSION or _weaker(info.kdf, policy.params_for(info.kdf.name))


def _weaker(params: KdfParams, current: KdfParams) -> bool:
    if isinstance(params, Pbkdf2Params) and isinstance(current, Pbkdf2Params):
        return params.weaker_than(current)
    if isinstance(params, ScryptParams) and isinstance(current, ScryptParams):
        return params.weaker_than(current)
    if isinstance(params, Argon2idParams) and isinstance(current, Argon2idParams):
        return params.weaker_than(current)
    return True  # unreachable: params_for returns the same KDF


def change_password(
    envelope: str | bytes,
    old_password: str,
    new_password: str,
    *,
    associated_data: str | None = None,
    kdf: KdfName | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> str:
    """Open with ``old_password`` and seal again under ``new_password`` with the policy's
    current parameters (and a fresh salt and IV). ``kdf`` defaults to the envelope's own."""
    info = inspect_envelope(envelope, policy)
    api_key = decrypt_api_key(
        envelope, old_password, associated_data=associated_data, policy=policy
    )
    return encrypt_api_key(
        api_key,
        new_password,
        kdf=kdf or info.kdf.name,
        associated_data=associated_data,
        policy=policy,
    )


def reencrypt(
    envelope: str | bytes,
    password: str,
    *,
    associated_data: str | None = None,
    kdf: KdfName | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> str:
    """Migrate an envelope to the policy's current parameters, keeping the password.

    A password shorter than ``policy.min_password_length`` cannot be kept: the
    ConfigurationError asks the caller to have the user choose a new one (change_password).
    """
    return change_password(
        envelope, password, password, associated_data=associated_data, kdf=kdf, policy=policy
    )
