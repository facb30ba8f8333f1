"""Stores of sealed secrets that a rotation can walk: the contract, a directory, a dict.

A sealed value (:func:`patterns.kms.seal`) does not hold its encryption context, so a store
that rotation can rewrap keeps each value next to its context. :class:`SealedStore` is what
:mod:`patterns.lifecycle.rotation` needs; the BFF's key store or a database table can meet
it with an adapter of a few lines. ``replace`` is compare-and-set, so a value the
application changed during the rotation is left alone (and counted) rather than clobbered.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final, Protocol

from patterns.errors import ConfigurationError
from patterns.kms import SEALED_PREFIX

__all__ = ["MemorySealedStore", "SealedDirectory", "SealedStore"]

_SUFFIX: Final = ".sealed.json"


class SealedStore(Protocol):
    """Sealed secrets with their encryption contexts, addressable by a name."""

    def items(self) -> Iterator[tuple[str, str, Mapping[str, str]]]:
        """Yield (name, sealed value, encryption context) for every secret."""
        ...

    def replace(self, name: str, expected: str, sealed: str) -> bool:
        """Store ``sealed`` under ``name`` if it still holds ``expected``; True if it did."""
        ...


class MemorySealedStore:
    """A dict of name -> (sealed, context): for tests, notebooks and small tools."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, dict[str, str]]] = {}

    def put(self, name: str, sealed: str, context: Mapping[str, str]) -> None:
        with self._lock:
            self._values[name] = (sealed, dict(context))

    def get(self, name: str) -> str:
        with self._lock:
            return self._values[name][0]

    def items(self) -> Iterator[tuple[str, str, Mapping[str, str]]]:
        with self._lock:
            snapshot = list(self._values.items())
        for name, (sealed, context) in snapshot:
            yield name, sealed, context

    def replace(self, name: str, expected: str, sealed: str) -> bool:
        with self._lock:
            current = self._values.get(name)
            if current is None or current[0] != expected:
                return False
            self._values[name] = (sealed, current[1])
            return True


class SealedDirectory:
    """One ``<name>.sealed.json`` file per secret: ``{"sealed": "kms1...", "context": {...}}``.

    Writes are atomic (temporary file + rename, mode 0600). The files hold no plaintext:
    a copied directory is ciphertext plus identifiers. Concurrent writers other than a
    rotation should use the same compare-and-set (:meth:`replace`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigurationError(f"{self.path} is not a directory of sealed secrets")
        self._lock = threading.Lock()

    def _file(self, name: str) -> Path:
        if not name or "/" in name or name.startswith(".") or "\x00" in name:
            raise ConfigurationError(f"invalid secret name {name[:40]!r}")
        return self.path / f"{name}{_SUFFIX}"

    def put(self, name: str, sealed: str, context: Mapping[str, str]) -> None:
        """Add or overwrite a secret (the application's write path)."""
        if not sealed.startswith(SEALED_PREFIX):
            raise ConfigurationError("only sealed values (kms1....) may be stored here")
        self._write(self._file(name), {"sealed": sealed, "context": dict(context)})

    def _read(self, file: Path) -> tuple[str, dict[str, str]]:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
            sealed, context = document["sealed"], document["context"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(f"{file.name}: not a sealed-secret file ({error})") from None
        if not isinstance(sealed, str) or not isinstance(context, dict):
            raise ConfigurationError(f"{file.name}: not a sealed-secret file")
        return sealed, {str(k): str(v) for k, v in context.items()}

    def get(self, name: str) -> str:
        return self._read(self._file(name))[0]

    def items(self) -> Iterator[tuple[str, str, Mapping[str, str]]]:
        for file in sorted(self.path.glob(f"*{_SUFFIX}")):
            sealed, context = self._read(file)
            yield file.name[: -len(_SUFFIX)], sealed, context

    def replace(self, name: str, expected: str, sealed: str) -> bool:
        file = self._file(name)
        with self._lock:
            try:
                current, context = self._read(file)
            except ConfigurationError:
                return False
            if current != expected:
                return False
            self._write(file, {"sealed": sealed, "context": context})
            return True

    def _write(self, file: Path, document: dict[str, object]) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, sort_keys=True)
                stream.write("\n")
            os.replace(temporary, file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
