"""What arrived at the stand-in, as an operator would log it and as an attacker would see it.

The redacted view is what a log should hold: method, path, headers with credentials replaced
by fingerprints, body size. The attacker's view is the same traffic as a network observer, a
TLS-terminating proxy or a browser extension with ``webRequest`` access sees it: every header
verbatim, so the key is *there*. The view still prints only fingerprints (this project never
prints a key), but it hands over the captured key as an :class:`~patterns.keys.ApiKey`, so a
notebook can show that replaying it works.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from patterns.errors import InvalidKeyError
from patterns.keys import ApiKey, fingerprint
from patterns.scanning import find_secrets, redact

__all__ = ["AttackerRecord", "RequestLog", "RequestRecord"]

_CREDENTIAL_HEADERS: Final = frozenset(
    {"x-api-key", "authorization", "cookie", "proxy-authorization"}
)
_EXCERPT: Final = 160


def _redact_keys(value: str) -> str:
    """Replace key-shaped strings only (header *names* such as ``x-api-key`` in an
    ``access-control-request-headers`` list are not secrets)."""
    return redact(value) if find_secrets(value, include_fakes=True) else value


def _credential_value(name: str, value: str) -> str:
    if name == "authorization" and " " in value:
        return value.split(" ", 1)[1].strip()
    return value.strip()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as a careful operator logs it (no secrets, no body)."""

    request_id: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body_bytes: int
    status: int
    origin: str | None
    _captured: tuple[tuple[str, str], ...] = field(repr=False, compare=False, default=())
    _excerpt: str = field(repr=False, compare=False, default="")

    def render(self) -> str:
        lines = [f"{self.method} {self.path} -> {self.status}  ({self.body_bytes} body bytes)"]
        lines += [f"  {name}: {value}" for name, value in self.headers]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class AttackerRecord:
    """One request as an observer on the path sees it."""

    method: str
    path: str
    credentials: tuple[tuple[str, ApiKey], ...]
    body_excerpt: str

    def render(self) -> str:
        lines = [f"{self.method} {self.path}"]
        for name, key in self.credentials:
            lines.append(
                f"  {name}: <the complete key, {len(key.reveal())} characters: {key}>  (replayable)"
            )
        if self.body_excerpt:
            lines.append(f"  body: {self.body_excerpt}")
        return "\n".join(lines)


class RequestLog:
    """The last ``size`` requests, safe to print (redacted) unless you ask for
    :meth:`attacker_view`."""

    def __init__(self, size: int = 200, *, capture_credentials: bool = True) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._capture = capture_credentials
        self._lock = threading.Lock()

    def record(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        status: int,
        body_size: int | None = None,
    ) -> None:
        """Store one request: credentials kept apart (for the attacker's view), the rest
        redacted. ``body`` may be a prefix of the body; ``body_size`` is its full length."""
        safe: list[tuple[str, str]] = []
        captured: list[tuple[str, str]] = []
        origin = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "origin":
                origin = value
            if lowered in _CREDENTIAL_HEADERS:
                secret = _credential_value(lowered, value)
                if secret and self._capture:
                    captured.append((lowered, secret))
                safe.append((lowered, f"[REDACTED {fingerprint(secret)}]"))
            else:
                safe.append((lowered, _redact_keys(value)))
        excerpt = body[:_EXCERPT].decode("utf-8", errors="replace")
        entry = RequestRecord(
            request_id=request_id,
            method=method,
            path=path,
            headers=tuple(safe),
            body_bytes=len(body) if body_size is None else body_size,
            status=status,
            origin=origin,
            _captured=tuple(captured),
            _excerpt=excerpt,
        )
        with self._lock:
            self._records.append(entry)

    def entries(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def last(self) -> RequestRecord:
        with self._lock:
            if not self._records:
                raise LookupError("no request has arrived yet")
            return self._records[-1]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def render(self, last: int = 5) -> str:
        """The redacted log of the last ``last`` requests."""
        return "\n".join(record.render() for record in self.entries()[-last:])

    def attacker_view(self, last: int = 5) -> list[AttackerRecord]:
        """The last ``last`` requests as an on-path observer sees them: full credentials
        (wrapped in :class:`ApiKey`, so printing still shows a fingerprint) and the body."""
        views: list[AttackerRecord] = []
        for record in self.entries()[-last:]:
            creds = tuple(
                (name, ApiKey(value)) for name, value in record._captured if _is_key(value)
            )
            body = redact(record._excerpt)
            views.append(AttackerRecord(record.method, record.path, creds, body))
        return views


def _is_key(value: str) -> bool:
    try:
        ApiKey(value)
    except InvalidKeyError:
        return False
    return True
