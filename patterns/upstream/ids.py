"""Identifiers for requests and messages: random by default, reproducible on request.

The real API's ids look like ``req_011CSHoEeqs5C35K2UUqR7Fy``. Tests and notebooks pass
:class:`SequentialIds` so that printed ids are the same on every run (strict nbval compares
outputs exactly) without a sanitizer.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import string
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["IdFactory", "SequentialIds", "random_id"]

#: Given a prefix (``req``, ``msg``), return a fresh id.
IdFactory = Callable[[str], str]

_ALPHABET: Final = string.ascii_letters + string.digits
_LENGTH: Final = 22


def random_id(prefix: str) -> str:
    """``prefix_01`` followed by 22 random base-62 characters."""
    return f"{prefix}_01" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


class SequentialIds:
    """Deterministic ids: the n-th id for a prefix depends only on ``seed``, prefix and n."""

    def __init__(self, seed: str = "stand-in") -> None:
        self._seed = seed
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def __call__(self, prefix: str) -> str:
        with self._lock:
            number = next(self._counters.setdefault(prefix, itertools.count(1)))
        digest = hashlib.sha256(f"{self._seed}:{prefix}:{number}".encode()).digest()
        body = "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:_LENGTH])
        return f"{prefix}_01{body}"
