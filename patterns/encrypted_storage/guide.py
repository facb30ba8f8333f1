"""The source guide's Pattern 1, transliterated to Python with its bug, for notebook 02 only.

Do not use this module: it exists so that the notebook can show, with running code, why the
guide's version can never decrypt anything. The guide derives its AES key from a salt that it
creates inline (inside the ``deriveKey`` call) and then returns a variable ``salt`` that was
never declared: in JavaScript that line throws ``ReferenceError`` (the Chromium test proves
it), and the obvious "fix", deleting ``salt`` from the return value, produces records that no
one can ever open. It also uses 100,000 PBKDF2 iterations where OWASP now says 600,000.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from patterns.errors import DecryptionError

__all__ = ["GUIDE_ITERATIONS", "guide_decrypt", "guide_encrypt"]

GUIDE_ITERATIONS: Final = 100_000


def _derive(password: str, salt: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=GUIDE_ITERATIONS)
    return kdf.derive(password.encode())


def guide_encrypt(api_key: str, password: str) -> dict[str, bytes]:
    """What the guide's function returns once its ``ReferenceError`` is "fixed" by deleting
    ``salt``: the ciphertext and the IV. The salt was used once and thrown away."""
    key = _derive(password, os.urandom(16))  # the salt lives only inside this call
    iv = os.urandom(12)
    return {"encrypted": AESGCM(key).encrypt(iv, api_key.encode(), None), "iv": iv}


def guide_decrypt(record: dict[str, bytes], password: str) -> str:
    """Decrypt a guide record: possible only if the record carries the salt it was made with."""
    salt = record.get("salt")
    if salt is None:
        raise DecryptionError(
            "this record has no salt, so the key it was encrypted with cannot be derived again: "
            "the API key is lost. Store the salt (and the KDF parameters) with the ciphertext"
        )
    try:
        key = _derive(password, salt)
        return AESGCM(key).decrypt(record["iv"], record["encrypted"], None).decode()
    except Exception:
        raise DecryptionError("wrong password, wrong salt or damaged record") from None
