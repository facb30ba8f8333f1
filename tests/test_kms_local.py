"""LocalKms specifics: the protected key file, the master key, versions, shredding on disk."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from patterns.errors import ConfigurationError, DecryptionError, KmsError
from patterns.keys import canary_key
from patterns.kms import LocalKms, rewrap, seal, unseal
from patterns.kms.protocol import KeyRef, frame_wrapped, parse_wrapped

CONTEXT = {"tenant": "acme", "user": "u-1"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


def test_key_file_holds_no_usable_material_and_is_private(path: Path) -> None:
    master = os.urandom(32)
    kms = LocalKms(path, master_key=master)
    kms.create_key("k")
    canary = canary_key()
    sealed = seal(canary, kms, "k", CONTEXT)
    text = path.read_text()
    assert canary.reveal() not in text
    assert master.hex() not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert unseal(sealed, LocalKms(path, master_key=master), CONTEXT) == canary.reveal()


def test_wrong_master_key_is_refused(path: Path) -> None:
    LocalKms(path, master_key=os.urandom(32)).create_key("k")
    with pytest.raises(KmsError, match="integrity"):
        LocalKms(path, master_key=os.urandom(32))


@pytest.mark.parametrize("field", ["enabled", "min_decryption_version", "versions"])
def test_an_edited_key_file_is_refused(path: Path, field: str) -> None:
    master = os.urandom(32)
    kms = LocalKms(path, master_key=master)
    kms.create_key("k")
    kms.disable_key("k")
    document = json.loads(path.read_text())
    entry = document["keys"]["k"]
    entry[field] = {"enabled": True, "min_decryption_version": 0, "versions": {}}[field]
    path.write_text(json.dumps(document))
    with pytest.raises(KmsError, match="integrity"):
        kms.key_info("k")


def test_passphrase_master_key_reopens_with_the_same_passphrase(path: Path) -> None:
    kms = LocalKms.from_passphrase(path, "correct horse battery staple", scrypt_n=2**14)
    kms.create_key("k")
    sealed = seal("secret-value", kms, "k", CONTEXT)
    again = LocalKms.from_passphrase(path, "correct horse battery staple")
    assert unseal(sealed, again, CONTEXT) == "secret-value"
    assert json.loads(path.read_text())["kdf"]["n"] == 2**14
    with pytest.raises(KmsError):
        LocalKms.from_passphrase(path, "wrong passphrase")


@pytest.mark.parametrize("bad", [b"", b"short", os.urandom(31), "not-bytes"])
def test_master_key_must_be_32_bytes(path: Path, bad: object) -> None:
    with pytest.raises(ConfigurationError):
        LocalKms(path, master_key=bad)  # type: ignore[arg-type]


def test_weak_scrypt_settings_are_refused(path: Path) -> None:
    with pytest.raises(ConfigurationError):
        LocalKms.from_passphrase(path, "pw", scrypt_n=2**10)
    with pytest.raises(ConfigurationError):
        LocalKms.from_passphrase(path, "", scrypt_n=2**14)


def test_min_decryption_version_retires_old_versions_after_rewrap(path: Path) -> None:
    kms = LocalKms(path, master_key=os.urandom(32))
    kms.create_key("k")
    old = seal("value", kms, "k", CONTEXT)
    kms.rotate_key("k")
    new = rewrap(old, kms, CONTEXT)
    kms.set_min_decryption_version("k", 2)
    with pytest.raises(KmsError, match="minimum decryption version"):
        unseal(old, kms, CONTEXT)
    assert unseal(new, kms, CONTEXT) == "value"
    with pytest.raises(ConfigurationError):
        kms.set_min_decryption_version("k", 3)


def test_destroy_removes_material_from_the_file(path: Path) -> None:
    kms = LocalKms(path, master_key=os.urandom(32))
    kms.create_key("k")
    kms.rotate_key("k")
    kms.destroy_key("k")
    entry = json.loads(path.read_text())["keys"]["k"]
    assert entry["versions"] == {}
    assert entry["destroyed"] is True
    with pytest.raises(KmsError, match="already exists"):
        kms.create_key("k")
    assert kms.key_info("k").enabled is False


def test_bad_names_and_unknown_versions(path: Path) -> None:
    kms = LocalKms(path, master_key=os.urandom(32))
    for bad in ["", "has space", "x" * 65, "../etc"]:
        with pytest.raises(ConfigurationError):
            kms.create_key(bad)
    kms.create_key("k")
    sealed = seal("value", kms, "k", CONTEXT)
    # A frame that names version 7 (which does not exist) is refused before any decryption.
    prefix, wrapped_text, body = sealed.split(".")
    raw = base64.urlsafe_b64decode(wrapped_text + "=" * (-len(wrapped_text) % 4))
    _, native = parse_wrapped(raw)
    forged = base64.urlsafe_b64encode(frame_wrapped(KeyRef("k", 7), native)).decode().rstrip("=")
    with pytest.raises(DecryptionError):
        unseal(f"{prefix}.{forged}.{body}", kms, CONTEXT)


def test_a_missing_or_foreign_file_is_a_clear_error(path: Path) -> None:
    kms = LocalKms(path, master_key=os.urandom(32))
    path.unlink()
    with pytest.raises(KmsError, match="missing"):
        kms.key_info("k")
    path.write_text("{}")
    with pytest.raises(KmsError, match="not a LocalKms key file"):
        kms.key_info("k")


def _create_keys(path: str, master: bytes, prefix: str) -> None:
    kms = LocalKms(path, master_key=master)
    for number in range(8):
        kms.create_key(f"{prefix}-{number}")


def test_writers_in_several_processes_lose_no_update(path: Path) -> None:
    master = os.urandom(32)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_create_keys, args=(str(path), master, f"p{n}")) for n in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    keys = json.loads(path.read_text())["keys"]
    assert len(keys) == 24


def test_key_info_reports_destruction(path: Path) -> None:
    kms = LocalKms(path, master_key=os.urandom(32))
    kms.create_key("k")
    assert kms.key_info("k").destroyed is False
    kms.destroy_key("k")
    assert kms.key_info("k").destroyed is True
