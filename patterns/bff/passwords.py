"""Users and their passwords, hashed with Argon2id (``cryptography``'s implementation).

OWASP's Password Storage Cheat Sheet: Argon2id with m=19 MiB, t=2, p=1. The hashes are PHC
strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``), so parameters can be raised later
and old hashes still verify. An unknown user is checked against a dummy hash made at start-up,
so both failures cost one Argon2id run and answer the same 401: timing does not tell an
attacker which usernames exist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from patterns.errors import ConfigurationError

__all__ = ["Argon2Parameters", "UserDirectory", "parse_user_spec"]

_SALT_BYTES: Final = 16  # NIST SP 800-132: at least 128 bits
_MIN_PASSWORD: Final = 8
_MAX_PASSWORD: Final = 1024  # Argon2 handles any length; this bounds the work per request


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost. The default is OWASP's first recommendation."""

    memory_kib: int = 19 * 1024
    iterations: int = 2
    lanes: int = 1

    def hash(self, password: str) -> str:
        kdf = Argon2id(
            salt=os.urandom(_SALT_BYTES),
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )
        return kdf.derive_phc_encoded(password.encode("utf-8"))


def _verify(password: str, phc: str) -> bool:
    try:
        Argon2id.verify_phc_encoded(password.encode("utf-8"), phc)
    except (InvalidKey, ValueError):
        return False
    return True


class UserDirectory:
    """Usernames and Argon2id hashes, in memory. Thread-safe.

    A real app keeps this table in its database; the hashing and the equal-cost refusal
    are what this class is here to show.
    """

    def __init__(self, parameters: Argon2Parameters | None = None) -> None:
        self._parameters = parameters or Argon2Parameters()
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        # Hash of a random password nobody knows: unknown users are checked against it.
        self._dummy = self._parameters.hash(os.urandom(16).hex())

    def add(self, username: str, password: str) -> None:
        """Add or replace a user. Passwords of 8 to 1024 characters."""
        if not username or len(username) > 64 or not username.isprintable() or ":" in username:
            raise ConfigurationError("a username is 1-64 printable characters without ':'")
        if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
            raise ConfigurationError(
                f"a password needs {_MIN_PASSWORD} to {_MAX_PASSWORD} characters"
            )
        hashed = self._parameters.hash(password)
        with self._lock:
            self._hashes[username] = hashed

    def authenticate(self, username: str, password: str) -> bool:
        """True when the password is right. Costs one Argon2id run whether or not the user
        exists, and never raises for bad input."""
        with self._lock:
            stored = self._hashes.get(username)
        if len(password) > _MAX_PASSWORD:
            password = password[:_MAX_PASSWORD]
            stored = None  # still spend the same work, then refuse
        ok = _verify(password, stored if stored is not None else self._dummy)
        return ok and stored is not None

    def stored_hash(self, username: str) -> str | None:
        """The PHC string stored for ``username`` (a hash, safe to show in a notebook)."""
        with self._lock:
            return self._hashes.get(username)

    def __contains__(self, username: object) -> bool:
        with self._lock:
            return username in self._hashes

    def __len__(self) -> int:
        with self._lock:
            return len(self._hashes)

    @classmethod
    def from_specs(
        cls, specs: Iterable[str], parameters: Argon2Parameters | None = None
    ) -> UserDirectory:
        """Build a directory from ``NAME:PASSWORD`` strings (the CLI's ``--user``)."""
        directory = cls(parameters)
        for spec in specs:
            directory.add(*parse_user_spec(spec))
        return directory


def parse_user_spec(spec: str) -> tuple[str, str]:
    """Split ``NAME:PASSWORD`` (the password may contain ':'); the error never echoes it."""
    name, sep, password = spec.partition(":")
    if not sep or not name or not password:
        raise ConfigurationError("a user is given as NAME:PASSWORD")
    return name, password
