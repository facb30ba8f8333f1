"""The test vectors of docs/envelope-format.md, checked against two implementations."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patterns.encrypted_storage import decrypt_api_key, inspect_envelope, needs_upgrade
from patterns.encrypted_storage.envelope import _seal
from patterns.encrypted_storage.kdf import derive_key, params_from_json
from patterns.keys import ApiKey

DOC: Final = Path(__file__).resolve().parents[1] / "docs" / "envelope-format.md"
_BLOCK: Final = re.compile(
    r"<!-- test-vectors:begin -->\s*```json\n(?P<body>.*?)```\s*<!-- test-vectors:end -->",
    re.DOTALL,
)


def load_vectors() -> list[dict[str, Any]]:
    match = _BLOCK.search(DOC.read_text(encoding="utf-8"))
    assert match, "docs/envelope-format.md lost its test-vector block"
    vectors: list[dict[str, Any]] = json.loads(match.group("body"))
    return vectors


VECTORS: Final = load_vectors()
IDS: Final = [vector["name"] for vector in VECTORS]


def test_vectors_cover_every_kdf_and_associated_data() -> None:
    assert {vector["kdf"]["name"] for vector in VECTORS} == {"pbkdf2-sha256", "scrypt", "argon2id"}
    assert any(vector["associated_data"] for vector in VECTORS)
    assert all(ApiKey(vector["plaintext"]).is_fake for vector in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_derived_key_matches_cryptography(vector: dict[str, Any]) -> None:
    params = params_from_json(vector["kdf"])
    password = unicodedata.normalize("NFC", vector["password"]).encode()
    derived = derive_key(params, password, bytes.fromhex(vector["salt_hex"]))
    assert derived.hex() == vector["derived_key_hex"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["kdf"]["name"] != "argon2id"], ids=str)
def test_derived_key_matches_hashlib(vector: dict[str, Any]) -> None:
    """hashlib (OpenSSL through CPython) as a second, independent KDF implementation."""
    kdf, salt = vector["kdf"], bytes.fromhex(vector["salt_hex"])
    password = unicodedata.normalize("NFC", vector["password"]).encode()
    if kdf["name"] == "pbkdf2-sha256":
        derived = hashlib.pbkdf2_hmac("sha256", password, salt, kdf["iterations"], 32)
    else:
        derived = hashlib.scrypt(
            password, salt=salt, n=kdf["n"], r=kdf["r"], p=kdf["p"], dklen=32, maxmem=2**28
        )
    assert derived.hex() == vector["derived_key_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_ciphertext_matches_aes_gcm_by_hand(vector: dict[str, Any]) -> None:
    info = inspect_envelope(vector["envelope"])
    assert info.salt.hex() == vector["salt_hex"]
    assert info.iv.hex() == vector["iv_hex"]
    aad = (
        b"anthropic-key-patterns/encrypted-api-key/v1\x00"
        + (vector["associated_data"] or "").encode()
    )
    plaintext = AESGCM(bytes.fromhex(vector["derived_key_hex"])).decrypt(
        info.iv, info.ciphertext, aad
    )
    assert plaintext.decode() == vector["plaintext"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_envelope_reproduced_byte_for_byte_and_opens(vector: dict[str, Any]) -> None:
    rebuilt = _seal(
        vector["plaintext"],
        vector["password"],
        params_from_json(vector["kdf"]),
        salt=bytes.fromhex(vector["salt_hex"]),
        iv=bytes.fromhex(vector["iv_hex"]),
        associated_data=vector["associated_data"],
    )
    assert rebuilt == vector["envelope"]
    opened = decrypt_api_key(
        vector["envelope"], vector["password"], associated_data=vector["associated_data"]
    )
    assert opened == vector["plaintext"]
    assert needs_upgrade(vector["envelope"]) == (vector["name"] == "pbkdf2-legacy-100k")
