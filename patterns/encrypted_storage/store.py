"""A small file-backed string store: the Python analogue of the browser's ``localStorage``.

Envelopes are safe to store anywhere, but the file that holds them should still be private
and never half-written: a crash in the middle of a save must leave the previous content, not
an empty or truncated file (which would lose the user's only copy of their encrypted key).
So every write goes to a temporary file in the same directory, is flushed and fsync'ed, and
then atomically renamed over the old file; the directory is fsync'ed too so the rename itself
survives a power cut. Files are created with mode 0600 in a directory of mode 0700.

The store refuses values that contain a plaintext API key (real or fake): storing the key in
clear text is the mistake this whole pattern exists to prevent.

Concurrent writers from several processes never corrupt the file, but the last one wins (like
``localStorage`` across tabs); put a lock around read-modify-write if that matters to you.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from patterns.errors import InvalidKeyError, StoreUnavailable
from patterns.scanning import find_secrets

__all__ = ["FileStore"]

_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700


class FileStore:
    """String values by name in one JSON file, written atomically with mode 0600.

    >>> store = FileStore(tmp_path / "keys.json")  # doctest: +SKIP
    >>> store.set("anthropic", envelope)  # doctest: +SKIP
    >>> FileStore(tmp_path / "keys.json").get("anthropic") == envelope  # doctest: +SKIP
    True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # -- reading ----------------------------------------------------------------------------
    def _load(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise StoreUnavailable(
                f"cannot read {self.path} ({error.strerror}); check that it exists and that "
                "this user may read it"
            ) from None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise StoreUnavailable(
                f"{self.path} is not a store file written by FileStore; restore it from a "
                "backup or move it away to start an empty store"
            )
        return data

    def get(self, name: str) -> str | None:
        """The value stored under ``name``, or None."""
        return self._load().get(name)

    def keys(self) -> list[str]:
        """Names in the store, sorted."""
        return sorted(self._load())

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    # -- writing ----------------------------------------------------------------------------
    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``, replacing the file atomically."""
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("FileStore names and values are str")
        if find_secrets(value, include_fakes=True) or find_secrets(name, include_fakes=True):
            raise InvalidKeyError(
                "refusing to store a plaintext API key: seal it first with "
                "patterns.encrypted_storage.encrypt_api_key and store the envelope"
            )
        data = self._load()
        data[name] = value
        self._write(data)

    def remove(self, name: str) -> None:
        """Delete ``name`` if present (logout should call this: ASVS 5.0 14.3.1)."""
        data = self._load()
        if data.pop(name, None) is not None:
            self._write(data)

    def clear(self) -> None:
        """Remove every entry (the file stays, empty)."""
        self._write({})

    def _write(self, data: dict[str, str]) -> None:
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        directory = self.path.parent
        temporary: str | None = None
        try:
            directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
            )
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                os.fchmod(stream.fileno(), _FILE_MODE)  # mkstemp uses 0600; be explicit
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
            temporary = None
            _fsync_directory(directory)
        except OSError as error:
            raise StoreUnavailable(
                f"could not save {self.path} ({error.strerror or error}); the previous "
                "content is unchanged. Check free space and permissions, then try again"
            ) from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    @property
    def mode(self) -> int:
        """The file's permission bits (0o600 once written)."""
        return stat.S_IMODE(self.path.stat().st_mode)

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
