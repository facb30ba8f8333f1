"""LocalKms: an embedded, file-backed KMS for notebooks, tests and single-machine apps.

Customer keys live in one JSON file. Each key has numbered versions (32 random bytes each);
every version is stored encrypted under a *master key* with AES-256-GCM, and the whole file
carries an HMAC, so a copied file is useless without the master key and an edited file (a
re-enabled key, a swapped version) is refused.

The master key comes from the caller: 32 random bytes kept elsewhere (an environment
variable, a secrets manager, a TPM) or a passphrase stretched with scrypt (``cryptography``'s
``Scrypt``, OWASP's N=2^17, r=8, p=1). The limit of doing this on one machine: whoever can
read both the key file and the master key (root, a memory dump, the same backup) holds every
customer key, and nothing stops a rollback to an older copy of the file. A real KMS or HSM
keeps key material on separate hardware, enforces access policy and logs every use
independently of the application: use :class:`VaultTransitKms` or :class:`AwsKms` for that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from patterns.errors import ConfigurationError, DecryptionError, KmsError
from patterns.kms.filelock import exclusive, fsync_directory
from patterns.kms.protocol import (
    DATA_KEY_BYTES,
    DataKey,
    EncryptionContext,
    KeyInfo,
    KeyRef,
    canonical_context,
    frame_wrapped,
    parse_wrapped,
)

__all__ = ["MASTER_KEY_BYTES", "LocalKms"]

MASTER_KEY_BYTES: Final = 32
_FORMAT: Final = "patterns.localkms/v1"
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NONCE: Final = 12
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_MIN_SCRYPT_N: Final = 2**14


_MAX_SCRYPT_N: Final = 2**20  # 1 GiB at r=8: the most a key file may ask us to spend


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _subkey(master: bytes, purpose: bytes) -> bytes:
    """Derive independent keys for wrapping and for the file MAC from one master key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class LocalKms:
    """A file-backed :class:`~patterns.kms.protocol.Kms` with versioned, disableable keys.

    Key ids are the names given to :meth:`create_key`. Thread-safe within one process; the
    file is re-read and its MAC checked on every operation, and written atomically.
    """

    backend = "local"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        master_key: bytes,
        kdf_record: dict[str, Any] | None = None,
    ) -> None:
        """Open the key file at ``path`` (created if missing) with a 32-byte master key.

        ``kdf_record`` says how the master key was derived (stored in the file, not secret);
        :meth:`from_passphrase` fills it in, a raw key leaves it None.
        """
        if not isinstance(master_key, bytes) or len(master_key) != MASTER_KEY_BYTES:
            raise ConfigurationError(
                f"LocalKms needs a {MASTER_KEY_BYTES}-byte master key (os.urandom(32)), "
                "or use LocalKms.from_passphrase()"
            )
        self._path = Path(path)
        self._wrap_key = AESGCM(_subkey(master_key, b"patterns.localkms/wrap"))
        self._mac_key = _subkey(master_key, b"patterns.localkms/mac")
        self._lock = threading.RLock()
        self._kdf = dict(kdf_record) if kdf_record else None
        with self._exclusive():
            if self._path.exists():
                self._load()
            else:
                self._save({})

    @classmethod
    def from_passphrase(
        cls, path: str | os.PathLike[str], passphrase: str, *, scrypt_n: int = 2**17
    ) -> LocalKms:
        """Open (or create) a key file whose master key is scrypt(passphrase, salt).

        The salt is stored in the file (it is not secret); the cost is OWASP's scrypt figure
        unless ``scrypt_n`` lowers it (tests only; at least 2^14).
        """
        if not passphrase:
            raise ConfigurationError("LocalKms.from_passphrase needs a non-empty passphrase")
        if scrypt_n < _MIN_SCRYPT_N or scrypt_n & (scrypt_n - 1):
            raise ConfigurationError("scrypt_n must be a power of two of at least 2**14")
        target = Path(path)
        kdf: dict[str, Any]
        if target.exists():
            try:
                kdf = dict(json.loads(target.read_text(encoding="utf-8"))["kdf"])
                salt = _unb64(str(kdf["salt"]))
                n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
            except (ValueError, KeyError, TypeError) as error:
                raise KmsError(f"{target.name} is not a passphrase-protected key file") from error
            # The parameters are read before the file's MAC can be checked: bound them, so a
            # planted key file cannot demand gigabytes of memory or crash the derivation.
            if not (
                _MIN_SCRYPT_N <= n <= _MAX_SCRYPT_N
                and n & (n - 1) == 0
                and r == _SCRYPT_R
                and p == _SCRYPT_P
                and len(salt) >= 16
            ):
                raise KmsError(f"{target.name} asks for scrypt parameters outside safe bounds")
        else:
            salt = os.urandom(16)
            n, r, p = scrypt_n, _SCRYPT_R, _SCRYPT_P
            kdf = {"name": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt)}
        master = Scrypt(salt=salt, length=MASTER_KEY_BYTES, n=n, r=r, p=p).derive(
            passphrase.encode("utf-8")
        )
        return cls(target, master_key=master, kdf_record=kdf)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise writers: a thread lock, plus an advisory file lock shared by processes
        (gunicorn workers, a CLI next to a server), so no update is lost between read and
        replace."""
        with self._lock, exclusive(self._path):
            yield

    # -- file ------------------------------------------------------------------------------
    def _mac(self, keys: dict[str, Any]) -> str:
        body = json.dumps(keys, sort_keys=True, separators=(",", ":")).encode()
        return _b64(hmac.new(self._mac_key, body, hashlib.sha256).digest())

    def _load(self) -> dict[str, Any]:
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
            keys, mac = document["keys"], document["mac"]
            if document.get("format") != _FORMAT or not isinstance(keys, dict):
                raise ValueError("unknown format")
        except FileNotFoundError as error:
            raise KmsError(f"key file {self._path.name} is missing") from error
        except (ValueError, KeyError, TypeError) as error:
            raise KmsError(f"key file {self._path.name} is not a LocalKms key file") from error
        if self._kdf is None and document.get("kdf"):
            self._kdf = document["kdf"]
        if not hmac.compare_digest(str(mac), self._mac(keys)):
            raise KmsError(
                f"key file {self._path.name} failed its integrity check: the master key is "
                "wrong or the file was modified; restore it from a trusted backup"
            )
        return keys

    def _save(self, keys: dict[str, Any]) -> None:
        document = {"format": _FORMAT, "kdf": self._kdf, "keys": keys, "mac": self._mac(keys)}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".localkms-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=1, sort_keys=True)
                stream.write("\n")
                stream.flush()
                os.fsync(stream.fileno())  # the new keys are on disk before they replace the old
            os.chmod(temporary, 0o600)
            os.replace(temporary, self._path)
            fsync_directory(self._path.parent)  # and the rename survives a power loss
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _entry(self, keys: dict[str, Any], key_id: str, *, usable: bool) -> dict[str, Any]:
        entry = keys.get(key_id)
        if not isinstance(entry, dict):
            raise KmsError(f"no customer key {key_id[:64]!r} in {self._path.name}")
        if usable and entry["destroyed"]:
            raise KmsError(
                f"customer key {key_id!r} was destroyed: data it protected cannot be recovered"
            )
        if usable and not entry["enabled"]:
            raise KmsError(f"customer key {key_id!r} is disabled; enable it to use it again")
        return entry

    def _material(self, key_id: str, version: int, entry: dict[str, Any]) -> bytes:
        blob = _unb64(entry["versions"][str(version)])
        aad = f"{key_id}:{version}".encode()
        try:
            return self._wrap_key.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag as error:  # pragma: no cover - the file MAC catches this first
            raise KmsError(f"key material of {key_id!r} failed its integrity check") from error

    def _new_version(self, key_id: str, entry: dict[str, Any]) -> int:
        version = max((int(v) for v in entry["versions"]), default=0) + 1
        nonce = os.urandom(_NONCE)
        sealed = self._wrap_key.encrypt(
            nonce, secrets.token_bytes(32), f"{key_id}:{version}".encode()
        )
        entry["versions"][str(version)] = _b64(nonce + sealed)
        entry["latest_version"] = version
        return version

    @staticmethod
    def _data_aad(key_id: str, version: int, context: EncryptionContext) -> bytes:
        return (
            f"patterns.localkms/datakey\x00{key_id}\x00{version}\x00".encode()
            + canonical_context(context)
        )

    def _wrap(
        self, keys: dict[str, Any], key_id: str, plaintext: bytes, context: EncryptionContext
    ) -> bytes:
        entry = self._entry(keys, key_id, usable=True)
        version = int(entry["latest_version"])
        nonce = os.urandom(_NONCE)
        native = nonce + AESGCM(self._material(key_id, version, entry)).encrypt(
            nonce, plaintext, self._data_aad(key_id, version, context)
        )
        return frame_wrapped(KeyRef(key_id, version), native)

    def _unwrap(self, keys: dict[str, Any], wrapped: bytes, context: EncryptionContext) -> bytes:
        ref, native = parse_wrapped(wrapped)
        entry = self._entry(keys, ref.key_id, usable=True)
        version = ref.version
        if version is None or str(version) not in entry["versions"]:
            raise DecryptionError("cannot decrypt: the wrapped data key names no known key version")
        if version < int(entry["min_decryption_version"]):
            raise KmsError(
                f"version {version} of customer key {ref.key_id!r} is below its minimum "
                "decryption version: rewrap the data before retiring a version"
            )
        try:
            return AESGCM(self._material(ref.key_id, version, entry)).decrypt(
                native[:_NONCE], native[_NONCE:], self._data_aad(ref.key_id, version, context)
            )
        except (InvalidTag, ValueError) as error:
            raise DecryptionError(
                "cannot decrypt: the wrapped data key was modified or the encryption context "
                "differs from the one it was created with"
            ) from error

    # -- the Kms protocol -------------------------------------------------------------------
    def create_key(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigurationError(
                "a key name is 1-64 characters of letters, digits, '.', '_' or '-'"
            )
        with self._exclusive():
            keys = self._load()
            if name in keys:
                raise KmsError(f"customer key {name!r} already exists (destroyed names stay taken)")
            entry: dict[str, Any] = {
                "name": name,
                "enabled": True,
                "destroyed": False,
                "min_decryption_version": 1,
                "versions": {},
            }
            self._new_version(name, entry)
            keys[name] = entry
            self._save(keys)
        return name

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        canonical_context(context)
        plaintext = os.urandom(DATA_KEY_BYTES)
        with self._lock:
            wrapped = self._wrap(self._load(), key_id, plaintext, context)
        return DataKey(plaintext, wrapped)

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        canonical_context(context)
        with self._lock:
            return self._unwrap(self._load(), wrapped, context)

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        canonical_context(context)
        with self._lock:
            keys = self._load()
            ref, _ = parse_wrapped(wrapped)
            return self._wrap(keys, ref.key_id, self._unwrap(keys, wrapped, context), context)

    def rotate_key(self, key_id: str) -> int:
        with self._exclusive():
            keys = self._load()
            version = self._new_version(key_id, self._entry(keys, key_id, usable=True))
            self._save(keys)
        return version

    def set_min_decryption_version(self, key_id: str, version: int) -> None:
        """Refuse data keys wrapped by versions below ``version`` (like Vault's setting)."""
        with self._exclusive():
            keys = self._load()
            entry = self._entry(keys, key_id, usable=True)
            if not 1 <= version <= int(entry["latest_version"]):
                raise ConfigurationError(
                    f"min_decryption_version must be between 1 and {entry['latest_version']}"
                )
            entry["min_decryption_version"] = version
            self._save(keys)

    def _set_enabled(self, key_id: str, enabled: bool) -> None:
        with self._exclusive():
            keys = self._load()
            entry = self._entry(keys, key_id, usable=False)
            if entry["destroyed"]:
                raise KmsError(f"customer key {key_id!r} was destroyed and cannot be enabled")
            entry["enabled"] = enabled
            self._save(keys)

    def disable_key(self, key_id: str) -> None:
        self._set_enabled(key_id, False)

    def enable_key(self, key_id: str) -> None:
        self._set_enabled(key_id, True)

    def destroy_key(self, key_id: str) -> None:
        """Erase every version's material from the file (crypto-shredding).

        Copies of the file made earlier (backups) still hold the material: shredding is only
        as complete as your backup retention, which is why real KMSs enforce a waiting period
        and then delete inside the HSM.
        """
        with self._exclusive():
            keys = self._load()
            entry = self._entry(keys, key_id, usable=False)
            entry.update(versions={}, destroyed=True, enabled=False)
            self._save(keys)

    def key_info(self, key_id: str) -> KeyInfo:
        with self._lock:
            entry = self._entry(self._load(), key_id, usable=False)
        return KeyInfo(
            key_id=key_id,
            name=str(entry["name"]),
            latest_version=int(entry["latest_version"]),
            min_decryption_version=int(entry["min_decryption_version"]),
            enabled=bool(entry["enabled"]) and not entry["destroyed"],
            backend=self.backend,
            destroyed=bool(entry["destroyed"]),
        )

    def __repr__(self) -> str:
        return f"LocalKms({self._path.name!r})"
