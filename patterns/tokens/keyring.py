"""The organisation key of the token proxy, with versions: roll it over without a restart.

Tokens do not hold the key; each token record names the key it was minted under by
``key_ref``: the keyring's name and the key's fingerprint (``org-1a2b3c4d``), the same on
every replica that holds the key. A :class:`Keyring` is the proxy's map from those
references to keys (it is a ``Mapping[str, ApiKey]``, so :class:`ProxySettings` takes it
as ``api_keys``), and it changes while the proxy runs:

* **planned rollover** (``rollover(new_key, grace=900)``): new tokens use the new key at
  once; tokens minted before keep the old key until the grace period ends, then move to the
  new key. Both keys must be valid at Anthropic during the grace period; after it the proxy
  never sends the old key again, and the report says when it is safe to delete it in the
  Console. No token fails at any point.
* **leak** (``rollover(new_key, grace=0, revoke_previous=True)``): the old key is dropped at
  once and every token minted under it is refused (401), whatever store holds it: one
  check per request, no scan of the token store.

A rollover that has nothing to do (the same key, versions already revoked) changes nothing
and says so, so a response script can be run twice. Keys are compared in constant time
and only fingerprints appear in reports and logs.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from patterns.errors import ConfigurationError, PatternError, TokenRejected
from patterns.keys import ApiKey

if TYPE_CHECKING:
    from fastapi import FastAPI

    from patterns.tokens.service import TokenService

__all__ = [
    "KeyStatus",
    "Keyring",
    "ReloadRequest",
    "Rollover",
    "add_rollover_route",
    "key_file_source",
]

log = logging.getLogger("patterns.tokens.keyring")

_REVOKED_MESSAGE: Final = (
    "the temporary token was issued under an organisation key that has been revoked; ask "
    "your application for a new token"
)


@dataclass(slots=True)
class _Version:
    ref: str
    key: ApiKey | None  # None once retired or revoked: the old key is not kept in memory
    fingerprint: str
    added_at: float
    retire_at: float | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """One version of the organisation key, as a report shows it (no secret)."""

    ref: str
    fingerprint: str
    added_at: float
    state: str  # "current", "grace", "retired" or "revoked"
    retire_at: float | None


@dataclass(frozen=True, slots=True)
class Rollover:
    """What a rollover did."""

    changed: bool
    current_ref: str
    current_fingerprint: str
    previous: tuple[KeyStatus, ...]
    revoked_refs: tuple[str, ...]
    delete_old_key_after: float | None  # when the proxy stops sending the old key
    rolled_over: bool = False  # a new key became current in this call

    def lines(self) -> list[str]:
        """Human-readable report lines (fingerprints only)."""
        if not self.changed:
            return [f"nothing to do: {self.current_ref} ({self.current_fingerprint}) is current"]
        out = []
        if self.rolled_over:
            out.append(f"new tokens use {self.current_ref} ({self.current_fingerprint})")
        out.extend(f"{ref}: its tokens are refused" for ref in self.revoked_refs if "-" not in ref)
        for status in self.previous:
            if status.state == "revoked" and status.ref in self.revoked_refs:
                out.append(f"{status.ref} ({status.fingerprint}) revoked: its tokens are refused")
            elif status.state == "grace" and status.retire_at is not None:
                out.append(
                    f"{status.ref} ({status.fingerprint}) serves its tokens until "
                    f"{_utc(status.retire_at)}; delete it in the Anthropic Console after that"
                )
        return out


def _utc(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


class Keyring(Mapping[str, ApiKey]):
    """Versions of the organisation key; ``get(key_ref)`` picks the key for a token.

    ``clock`` returns seconds since the epoch (inject a fake one to fast-forward the grace
    period). ``source`` re-reads the key from where the operator keeps it (a file, a
    secrets manager) for :meth:`reload`. ``legacy_refs`` are refs that tokens minted
    before the keyring existed carry (a :class:`TokenService` mints ``"default"`` unless
    attached): they are served with the current key, so an upgrade breaks no live token.
    Thread-safe.
    """

    def __init__(
        self,
        key: ApiKey,
        *,
        name: str = "org",
        clock: Callable[[], float] = time.time,
        source: Callable[[], ApiKey] | None = None,
        legacy_refs: Iterable[str] = ("default",),
    ) -> None:
        if not name.isidentifier():
            raise ConfigurationError("a keyring name must be a short identifier such as 'org'")
        self._name = name
        self._prefix = f"{name}-"
        self._legacy = frozenset(legacy_refs)
        self._legacy_revoked = False
        self._clock = clock
        self._source = source
        self._lock = threading.Lock()
        self._versions: dict[str, _Version] = {}
        self._services: list[TokenService] = []
        self._current = self._add(ApiKey(key))

    # -- Mapping ------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The key to forward a token's request with, or ``default`` for an unknown ref.

        Raises :class:`TokenRejected` for a ref whose key was revoked after a leak.
        """
        with self._lock:
            version = self._versions.get(key)
            if version is None and key in self._legacy and self._legacy_revoked:
                raise TokenRejected(_REVOKED_MESSAGE)
            if version is None:
                # A replica that took a new key before this one did minted the token: serve
                # it with this replica's current key until this replica is reloaded too.
                return (
                    self._versions[self._current].key
                    if key.startswith(self._prefix) or key in self._legacy
                    else default
                )
            if version.revoked:
                raise TokenRejected(_REVOKED_MESSAGE)
            self._retire_due(self._clock())
            return version.key or self._versions[self._current].key

    def __getitem__(self, key: str) -> ApiKey:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter([ref for ref, v in self._versions.items() if not v.revoked])

    def __len__(self) -> int:
        with self._lock:
            return sum(not v.revoked for v in self._versions.values())

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_ref!r}, versions={len(self._versions)})"

    # -- state --------------------------------------------------------------------------
    @property
    def current_ref(self) -> str:
        return self._current

    @property
    def current(self) -> ApiKey:
        with self._lock:
            key = self._versions[self._current].key
        assert key is not None  # the current version always holds its key
        return key

    def status(self) -> list[KeyStatus]:
        """Every version, oldest first, with its state now."""
        with self._lock:
            now = self._clock()
            self._retire_due(now)
            return [self._status(v) for v in self._versions.values()]

    def attach(self, service: TokenService) -> None:
        """Make ``service`` mint under the current key, now and after each rollover."""
        with self._lock:
            self._services.append(service)
            service.key_ref = self._current

    # -- changes ------------------------------------------------------------------------
    def rollover(
        self, new_key: ApiKey, *, grace: float = 900.0, revoke_previous: bool = False
    ) -> Rollover:
        """Make ``new_key`` current. Older versions serve their tokens for ``grace`` seconds
        (at most; a shorter earlier deadline is kept), or are revoked at once."""
        if grace < 0:
            raise ConfigurationError("grace must be zero or more seconds")
        new_key = ApiKey(new_key)
        with self._lock:
            now = self._clock()
            self._retire_due(now)
            changed = False
            current = self._versions[self._current]
            if not (current.key is not None and current.key == new_key):  # constant time
                if any(
                    v.revoked and v.fingerprint == new_key.fingerprint
                    for v in self._versions.values()
                ):
                    raise ConfigurationError(
                        "this key was revoked after a leak; create a new key in the Console"
                    )
                self._current = self._add(new_key)
                changed = True
            revoked: list[str] = []
            for version in self._versions.values():
                if version.ref == self._current or version.revoked:
                    continue
                if revoke_previous:
                    version.revoked, version.key, version.retire_at = True, None, now
                    revoked.append(version.ref)
                    changed = True
                elif version.key is not None:
                    deadline = now + grace
                    if version.retire_at is None or deadline < version.retire_at:
                        version.retire_at = deadline
            if revoke_previous and self._legacy and not self._legacy_revoked:
                self._legacy_revoked = True  # tokens from before the keyring: same old key
                revoked.extend(sorted(self._legacy))
                changed = True
            self._retire_due(now)
            for service in self._services:
                service.key_ref = self._current
            previous = tuple(
                self._status(v) for v in self._versions.values() if v.ref != self._current
            )
            grace_ends = [
                v.retire_at
                for v in self._versions.values()
                if v.key is not None and v.retire_at is not None and v.ref != self._current
            ]
            report = Rollover(
                changed,
                self._current,
                self._versions[self._current].fingerprint,
                previous,
                tuple(revoked),
                max(grace_ends) if grace_ends else None,
                rolled_over=self._current != current.ref,
            )
        for line in report.lines():
            log.info("keyring %s: %s", self._name, line)
        return report

    def reload(self, *, grace: float = 900.0, revoke_previous: bool = False) -> Rollover:
        """Read the key again from ``source`` and roll over to it (a no-op if unchanged)."""
        if self._source is None:
            raise ConfigurationError("this keyring has no source to reload the key from")
        return self.rollover(self._source(), grace=grace, revoke_previous=revoke_previous)

    # -- internals (lock held) ----------------------------------------------------------
    def _add(self, key: ApiKey) -> str:
        """The ref of ``key`` (its name and fingerprint: the same on every replica), made
        current; a version still in its grace period comes back as it was."""
        ref = self._prefix + key.fingerprint.removeprefix("sha256:")
        existing = self._versions.pop(ref, None)
        added_at = existing.added_at if existing is not None else self._clock()
        self._versions[ref] = _Version(ref, key, key.fingerprint, added_at)  # newest last
        return ref

    def _retire_due(self, now: float) -> None:
        for version in self._versions.values():
            if (
                version.key is not None
                and version.retire_at is not None
                and now >= version.retire_at
            ):
                version.key = None  # its tokens now use the current key

    def _status(self, version: _Version) -> KeyStatus:
        if version.ref == self._current:
            state = "current"
        elif version.revoked:
            state = "revoked"
        elif version.key is not None:
            state = "grace"
        else:
            state = "retired"
        return KeyStatus(
            version.ref, version.fingerprint, version.added_at, state, version.retire_at
        )


def key_file_source(path: str | os.PathLike[str]) -> Callable[[], ApiKey]:
    """A keyring ``source`` that reads the key from a file only its owner can read.

    A file is where secret managers and orchestrators put secrets (Kubernetes and Docker
    secrets, systemd credentials); unlike an environment variable it can change while the
    process runs, which is what a rollover without restart needs.
    """
    target = Path(path)

    def read() -> ApiKey:
        try:
            mode = target.stat().st_mode
            text = target.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the key file {target}: {error.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the key file {target} is readable by other users; chmod 600 it"
            )
        return ApiKey(text.strip())

    return read


class ReloadRequest(BaseModel):
    """Body of ``POST /admin/org-key/reload``: how to roll over, never the key itself."""

    model_config = ConfigDict(extra="forbid")
    grace_seconds: float = Field(default=900.0, ge=0, le=7 * 24 * 3600)
    revoke_previous: bool = False


def add_rollover_route(app: FastAPI, keyring: Keyring, dependencies: list[Any]) -> None:
    """``POST /admin/org-key/reload`` (behind the issuer secret): re-read the key from the
    keyring's source and roll over. The key never travels over HTTP; the body only says
    how: ``{"grace_seconds": 900, "revoke_previous": false}``."""
    from fastapi.responses import JSONResponse

    from patterns.upstream.envelope import UpstreamError

    @app.post("/admin/org-key/reload", dependencies=dependencies)
    async def reload(body: ReloadRequest) -> JSONResponse:
        try:
            report = keyring.reload(grace=body.grace_seconds, revoke_previous=body.revoke_previous)
        except PatternError as error:
            raise UpstreamError(400, str(error)) from None
        payload = {
            "changed": report.changed,
            "rolled_over": report.rolled_over,
            "current": {"ref": report.current_ref, "fingerprint": report.current_fingerprint},
            "revoked": list(report.revoked_refs),
            "versions": [
                {"ref": s.ref, "fingerprint": s.fingerprint, "state": s.state}
                for s in keyring.status()
            ],
            "delete_old_key_after": _utc(report.delete_old_key_after)
            if report.delete_old_key_after is not None
            else None,
            "report": report.lines(),
        }
        return JSONResponse(payload, headers={"cache-control": "no-store"})
