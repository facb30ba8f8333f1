"""Key age: when each key was created, and a reminder once one passes a configurable age.

Anthropic's guidance is to rotate keys regularly; "regularly" becomes a number here
(``max_age``, 90 days by default, a common policy figure) and a reminder that a team can
wire to chat or a pager (any callable; :func:`webhook_notifier` posts JSON). The inventory
stores names, fingerprints and creation times, never keys, so it can live in the repository
or a ticket.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from patterns.errors import ConfigurationError
from patterns.keys import ApiKey
from patterns.tokens.keyring import Keyring

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "KeyInventory",
    "Reminder",
    "TrackedKey",
    "check_key_ages",
    "keyring_keys",
    "utc",
    "webhook_notifier",
]

DEFAULT_MAX_AGE_DAYS: Final = 90
_DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class TrackedKey:
    """A key known by its name and fingerprint, and when it was created (epoch seconds)."""

    name: str
    fingerprint: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Reminder:
    """A key that is due (or soon due) for rotation."""

    name: str
    fingerprint: str
    age_days: float
    max_age_days: float
    overdue: bool

    def __str__(self) -> str:
        if self.overdue:
            return (
                f"{self.name} ({self.fingerprint}) is {self.age_days:.0f} days old, past the "
                f"{self.max_age_days:.0f}-day limit: rotate it"
            )
        return (
            f"{self.name} ({self.fingerprint}) is {self.age_days:.0f} days old and reaches "
            f"the {self.max_age_days:.0f}-day limit in {self.max_age_days - self.age_days:.0f} "
            "days: plan its rotation"
        )


def check_key_ages(
    keys: Iterable[TrackedKey],
    *,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    warn_days: float = 0.0,
    now: float | None = None,
    notify: Callable[[Reminder], None] | None = None,
) -> list[Reminder]:
    """Return a reminder for each key at least ``max_age_days - warn_days`` old (oldest
    first), and pass each to ``notify``."""
    if max_age_days <= 0 or warn_days < 0:
        raise ConfigurationError("max_age_days must be positive and warn_days not negative")
    moment = time.time() if now is None else now
    reminders = []
    for key in sorted(keys, key=lambda k: k.created_at):
        age = (moment - key.created_at) / _DAY
        if age >= max_age_days - warn_days:
            reminders.append(
                Reminder(key.name, key.fingerprint, age, max_age_days, age >= max_age_days)
            )
    for reminder in reminders:
        if notify is not None:
            notify(reminder)
    return reminders


def webhook_notifier(url: str, *, timeout: float = 5.0) -> Callable[[Reminder], None]:
    """A ``notify`` callable that POSTs each reminder as JSON (a chat or pager webhook).

    A chat webhook's URL is itself a credential: it must use https (loopback aside), and a
    failure is reported by its type and status only, never with the URL.
    """
    import httpx

    from patterns.kms.protocol import require_tls
    from patterns.lifecycle.monitoring.hooks import hidden_request_logs

    require_tls(url, service="the webhook", exposes="the webhook's secret URL")

    def post(reminder: Reminder) -> None:
        payload = {"text": str(reminder), "reminder": asdict(reminder)}
        try:
            with hidden_request_logs():  # httpx logs the full URL, secret included, at INFO
                response = httpx.post(url, json=payload, timeout=timeout)
        except httpx.HTTPError as error:
            raise ConfigurationError(
                f"the webhook could not be reached ({type(error).__name__})"
            ) from None
        if response.status_code >= 400:
            raise ConfigurationError(
                f"the webhook refused the reminder (HTTP {response.status_code})"
            )

    return post


class KeyInventory:
    """A JSON file of tracked keys: ``{"keys": [{"name", "fingerprint", "created_at"}]}``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def tracked(self) -> list[TrackedKey]:
        if not self.path.exists():
            return []
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))["keys"]
            return [
                TrackedKey(str(r["name"]), str(r["fingerprint"]), float(r["created_at"]))
                for r in rows
            ]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(f"{self.path}: not a key inventory ({error})") from None

    def track(self, name: str, key: ApiKey, created_at: float | None = None) -> TrackedKey:
        """Add or replace ``name``; only the key's fingerprint is written."""
        entry = TrackedKey(name, key.fingerprint, time.time() if created_at is None else created_at)
        rows = [k for k in self.tracked() if k.name != name] + [entry]
        self._write(rows)
        return entry

    def forget(self, name: str) -> bool:
        rows = self.tracked()
        kept = [k for k in rows if k.name != name]
        if len(kept) != len(rows):
            self._write(kept)
        return len(kept) != len(rows)

    def _write(self, rows: list[TrackedKey]) -> None:
        document = {"keys": [asdict(k) for k in sorted(rows, key=lambda k: k.name)]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=2)
                stream.write("\n")
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def utc(timestamp: float) -> str:
    """ISO 8601 UTC, seconds: how reports print times."""
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def keyring_keys(keyring: Keyring) -> list[TrackedKey]:
    """The token proxy's organisation key versions still in use, aged from when the proxy
    took them (the Console's creation date can only be earlier: track it if you have it)."""
    return [
        TrackedKey(status.ref, status.fingerprint, status.added_at)
        for status in keyring.status()
        if status.state in {"current", "grace"}
    ]
