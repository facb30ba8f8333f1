"""Key hygiene: a wrapper that keeps an API key out of every place a value usually shows up.

A plain ``str`` holding a key leaks the moment somebody prints it, logs it, formats it into an
exception message or pickles the object that holds it. :class:`ApiKey` makes all of those
show a *fingerprint* instead (``sk-ant-api03-…x7AA (sha256:1a2b3c4d)``), so the key is only
ever exposed by an explicit, greppable ``.reveal()`` at the one place that must send it.

What this cannot do, and the notebooks say so: Python offers no way to wipe a ``str``, so the
revealed value lives until the garbage collector reuses its memory, and a debugger or a heap
dump can still read ``_value``. The wrapper protects against accidents, not against code
running in the same process.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
from typing import Any, Final, Literal, NoReturn, final

from patterns.errors import InvalidKeyError

__all__ = [
    "FAKE_MARKERS",
    "ApiKey",
    "KeyKind",
    "canary_key",
    "demo_key",
    "describe_secret",
    "fingerprint",
    "key_from_environment",
    "prompt_for_key",
]

KeyKind = Literal["api03", "admin01", "oat01", "ort01"]

#: Markers that make a key-shaped string recognisably fake. The scanner lets such strings
#: pass, and every fake key in this project carries one in its body.
FAKE_MARKERS: Final = ("DEMO", "TEST", "FAKE", "EXAMPLE", "CANARY")

_PREFIX_RE: Final = re.compile(r"^(?:sk-ant-[a-z]+[0-9]{2}-|akp_[a-z]+_)")
_BODY_LENGTH: Final = 93  # characters between the prefix and the trailing "AA" (api03/admin01)
_ALLOWED_RE: Final = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces or controls
_TAIL: Final = 4  # characters of the key's end shown in a fingerprint display
_MIN_LENGTH_FOR_TAIL: Final = 24


def fingerprint(key: str | ApiKey) -> str:
    """Return ``sha256:`` plus the first 8 hex digits of the key's SHA-256.

    Eight hex digits are enough to tell a user's keys apart in logs and support tickets, and
    far too few to help anyone guess a key (which has over 500 bits of randomness anyway).
    """
    value = key.reveal() if isinstance(key, ApiKey) else key
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def describe_secret(value: str) -> str:
    """Return the safe display of a key-shaped string: its prefix, its last 4 characters and
    its fingerprint, e.g. ``sk-ant-api03-…x7AA (sha256:1a2b3c4d)``.

    The prefix says which kind of key it is (API, admin, OAuth); the tail matches what the
    Anthropic Console shows, so a user can recognise their own key. Short or unknown values
    show no tail, since four characters of a short secret are a real part of it.
    """
    match = _PREFIX_RE.match(value)
    prefix = match.group(0) if match else ""
    tail = value[-_TAIL:] if len(value) >= _MIN_LENGTH_FOR_TAIL else ""
    return f"{prefix}…{tail} ({fingerprint(value)})"


@final
class ApiKey:
    """An API key that shows only its fingerprint in ``repr``, ``str``, f-strings and logs.

    >>> key = demo_key("docs")
    >>> print(key)  # doctest: +ELLIPSIS
    sk-ant-api03-…AA (sha256:...)

    Use :meth:`reveal` at the single point where the key leaves for the API. Instances are
    immutable, compare in constant time, and refuse to be pickled, so they cannot slip into a
    cache, a session file or a multiprocessing queue by accident.
    """

    __slots__ = ("_display", "_fingerprint", "_value")

    _value: str
    _fingerprint: str
    _display: str

    def __init__(self, value: str | ApiKey) -> None:
        if isinstance(value, ApiKey):
            value = value.reveal()
        if not isinstance(value, str):
            raise InvalidKeyError(f"an API key must be given as str, not {type(value).__name__}")
        value = value.strip()
        if not value or not _ALLOWED_RE.match(value):
            # Never echo the value: it may be a real key with a pasted space in it.
            raise InvalidKeyError(
                "an API key must be non-empty printable ASCII without spaces or line breaks; "
                "copy it again from the Anthropic Console"
            )
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_fingerprint", fingerprint(value))
        object.__setattr__(self, "_display", describe_secret(value))

    # -- the one way out ------------------------------------------------------------------
    def reveal(self) -> str:
        """Return the key itself. Call this only where the key is sent to the API."""
        return self._value

    # -- safe views -----------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """``sha256:`` and 8 hex digits: safe to log, store and show to the user."""
        return self._fingerprint

    @property
    def kind(self) -> str:
        """The key's kind from its prefix (``api03``, ``admin01``, ...) or ``"unknown"``."""
        match = _PREFIX_RE.match(self._value)
        if not match:
            return "unknown"
        prefix = match.group(0)
        return prefix[len("sk-ant-") : -1] if prefix.startswith("sk-ant-") else prefix[:-1]

    @property
    def is_fake(self) -> bool:
        """True when the key carries one of :data:`FAKE_MARKERS` (a demo or test key)."""
        return any(marker in self._value for marker in FAKE_MARKERS)

    def __repr__(self) -> str:
        return f"ApiKey('{self._display}')"

    def __str__(self) -> str:
        return self._display

    def __format__(self, format_spec: str) -> str:
        return format(self._display, format_spec)

    # -- comparison -----------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())

    # -- immutability and no serialisation --------------------------------------------------
    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("ApiKey is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("ApiKey is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "ApiKey refuses to be pickled: store a fingerprint, or seal the key with "
            "patterns.encrypted_storage or patterns.kms first"
        )

    def __getstate__(self) -> NoReturn:
        raise TypeError("ApiKey refuses to be pickled")

    def __copy__(self) -> ApiKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ApiKey:
        return self


def _key_shape(kind: KeyKind, body: str) -> str:
    return f"sk-ant-{kind}-{body}AA"


def demo_key(label: str = "demo", *, kind: KeyKind = "api03") -> ApiKey:
    """Return a format-valid fake key whose body starts with ``DEMO``.

    The same label always gives the same key, so notebook outputs (fingerprints) are stable;
    different labels give different keys, so a demo can have several users. The stand-in API
    accepts these keys; the real API rejects them.
    """
    stream = b"".join(
        hashlib.sha256(f"patterns-demo-key:{kind}:{label}:{i}".encode()).digest() for i in range(3)
    )
    filler = base64.urlsafe_b64encode(stream).decode().rstrip("=")
    body = ("DEMO" + filler)[:_BODY_LENGTH]
    return ApiKey(_key_shape(kind, body))


def canary_key(*, kind: KeyKind = "api03") -> ApiKey:
    """Return a fresh random fake key marked ``CANARY``, for tests that prove a key never
    leaks: plant it, run the code, then search every output for it."""
    filler = secrets.token_urlsafe(96)
    body = ("CANARY" + filler)[:_BODY_LENGTH]
    return ApiKey(_key_shape(kind, body))


def key_from_environment(variable: str = "ANTHROPIC_API_KEY") -> ApiKey | None:
    """Return the key in ``variable`` (the variable the official SDK reads), or None."""
    value = os.environ.get(variable, "").strip()
    return ApiKey(value) if value else None


def prompt_for_key(
    variable: str = "ANTHROPIC_API_KEY", *, prompt: str = "Anthropic API key (input hidden): "
) -> ApiKey | None:
    """Return a real key from the environment, else ask for it with :func:`getpass.getpass`.

    ``getpass`` is the safe way to ask in a notebook: the value is not echoed and, unlike an
    ipywidgets ``Password`` box, it is not saved into the notebook's widget state. Returns
    None when nothing is entered or no terminal or notebook can ask.
    """
    key = key_from_environment(variable)
    if key is not None:
        return key
    if not sys.stdin or (not sys.stdin.isatty() and "ipykernel" not in sys.modules):
        return None
    try:
        entered = getpass.getpass(prompt).strip()
    except (EOFError, NotImplementedError):  # a front end that cannot ask (e.g. nbclient)
        return None
    return ApiKey(entered) if entered else None
