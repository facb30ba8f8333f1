"""A tamper-evident audit trail of every KMS operation, as hash-chained JSON lines.

Each line records who did what to which key version under which context, when, and whether
it worked. Each line also carries the hash of the line before it and its own hash, so that
editing, deleting, inserting or reordering a line breaks the chain and
:func:`verify_audit_log` reports the first bad line.

Limits, stated plainly: with a plain SHA-256 chain, someone who can rewrite the whole file can
recompute every hash. Pass an ``hmac_key`` kept away from the log's writers (then forging a
line needs the key), and store :attr:`AuditLog.head` somewhere else from time to time (then
cutting lines off the end is detected too). A real KMS adds its own independent trail
(CloudTrail, Vault audit devices); keep both.

The log never holds plaintext or keys: entries carry key ids, versions, the (non-secret)
encryption context and the error class, and a line that looks like it holds a key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from patterns.errors import ConfigurationError, KmsError, PatternError
from patterns.kms.filelock import exclusive
from patterns.kms.protocol import DataKey, EncryptionContext, KeyInfo, Kms, parse_wrapped
from patterns.scanning import find_secrets

__all__ = ["GENESIS", "AuditLog", "AuditReport", "AuditedKms", "read_audit_log", "verify_audit_log"]

#: The "previous hash" of the first line.
GENESIS: Final = "0" * 64
_FIELDS: Final = (
    "seq",
    "time",
    "actor",
    "operation",
    "backend",
    "key_id",
    "key_version",
    "context",
    "outcome",
    "error",
)


def _line_hash(entry: dict[str, Any], prev: str, hmac_key: bytes | None) -> str:
    body = json.dumps(
        {name: entry.get(name) for name in _FIELDS}, sort_keys=True, separators=(",", ":")
    )
    data = f"{prev}\n{body}".encode()
    if hmac_key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(hmac_key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of :func:`verify_audit_log`; ``first_bad_line`` counts from 1."""

    ok: bool
    entries: int
    first_bad_line: int | None
    reason: str
    head: str

    def __str__(self) -> str:
        if self.ok:
            return f"audit log OK: {self.entries} entries, chain intact"
        return f"audit log TAMPERED at line {self.first_bad_line}: {self.reason}"


def _tail(path: Path) -> tuple[int, str]:
    """The ``seq`` and ``hash`` of the log's last line (0 and the genesis hash if empty)."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            position, data = stream.tell(), b""
            while position > 0:
                step = min(4096, position)
                position -= step
                stream.seek(position)
                data = stream.read(step) + data
                if data.rstrip(b"\n").count(b"\n") >= 1:
                    break
    except FileNotFoundError:
        return 0, GENESIS
    except OSError as failure:
        raise KmsError(f"cannot write the audit log {path.name}: {failure.strerror}") from None
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.strip():
        return 0, GENESIS
    try:
        entry = json.loads(last)
        return int(entry["seq"]), str(entry["hash"])
    except (ValueError, KeyError, TypeError):
        raise KmsError("the audit log's last line is unreadable; verify the log") from None


class AuditLog:
    """Append-only JSON-lines writer that chains every line to the one before it.

    Several writers may share one file (gunicorn workers, a CLI next to a server): each
    append takes a file lock and continues the chain from the file's current last line.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        hmac_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._hmac_key = hmac_key
        self._clock = clock
        self._lock = threading.Lock()
        self._seq, self._head = 0, GENESIS
        if self.path.exists():
            report = verify_audit_log(self.path, hmac_key=hmac_key)
            if not report.ok:
                raise KmsError(f"refusing to append to a broken audit log: {report}")
            self._seq, self._head = report.entries, report.head

    @property
    def head(self) -> str:
        """Hash of the last line: store it elsewhere to detect truncation later."""
        return self._head

    def record(
        self,
        *,
        actor: str,
        operation: str,
        backend: str,
        key_id: str | None,
        key_version: int | None,
        context: EncryptionContext | None,
        outcome: str,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Append one entry and return it. Raises KmsError if it cannot be written."""
        with self._lock, exclusive(self.path):
            self._seq, self._head = _tail(self.path)  # another writer may have appended
            stamp = datetime.fromtimestamp(self._clock(), tz=UTC)
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "actor": actor,
                "operation": operation,
                "backend": backend,
                "key_id": key_id,
                "key_version": key_version,
                "context": dict(sorted(context.items())) if context else None,
                "outcome": outcome,
                "error": error,
            }
            entry["prev"] = self._head
            entry["hash"] = _line_hash(entry, self._head, self._hmac_key)
            line = json.dumps(entry, sort_keys=True, separators=(",", ":"))
            if find_secrets(line, include_fakes=True):
                raise KmsError("refusing to write an audit line that contains a key")
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(descriptor, (line + "\n").encode("utf-8"))
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
            except OSError as failure:
                raise KmsError(
                    f"cannot write the audit log {self.path.name}: {failure.strerror}"
                ) from None
            self._seq, self._head = entry["seq"], entry["hash"]
        return entry


def read_audit_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the log's entries (for display); verify it first with :func:`verify_audit_log`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def verify_audit_log(
    path: str | os.PathLike[str],
    *,
    hmac_key: bytes | None = None,
    expected_head: str | None = None,
) -> AuditReport:
    """Check every line's hash and its link to the line before; report the first break.

    With ``expected_head`` (a head saved earlier), a log whose end was cut off is reported
    too. A missing file is reported as broken, not as empty.
    """
    target = Path(path)
    if not target.exists():
        return AuditReport(False, 0, 1, "the audit log is missing", GENESIS)
    prev, count = GENESIS, 0
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            stored = entry["hash"]
            link_ok = entry["prev"] == prev and entry["seq"] == number
        except (ValueError, KeyError, TypeError):
            return AuditReport(False, count, number, "line is not a valid audit entry", prev)
        if not link_ok:
            return AuditReport(
                False,
                count,
                number,
                "line does not follow the previous one (deleted, inserted or reordered lines)",
                prev,
            )
        expected = _line_hash(entry, prev, hmac_key)
        # As bytes: compare_digest refuses non-ASCII str, and a tampered line may hold any.
        if not hmac.compare_digest(str(stored).encode(), expected.encode()):
            return AuditReport(False, count, number, "line content does not match its hash", prev)
        prev, count = str(stored), number
    if expected_head is not None and expected_head != prev:
        return AuditReport(
            False,
            count,
            count + 1,
            "the log ends early: lines after the saved head are missing",
            prev,
        )
    return AuditReport(True, count, None, "", prev)


class AuditedKms:
    """Wrap any :class:`Kms` so that every call, allowed or refused, is written to a log.

    Fail closed: if the audit line cannot be written, the caller gets a KmsError and no data
    key, so no key is ever used without a trace.
    """

    def __init__(self, kms: Kms, log: AuditLog, *, actor: str) -> None:
        self._kms, self._log, self._actor = kms, log, actor

    @property
    def backend(self) -> str:
        return self._kms.backend

    @property
    def inner(self) -> Kms:
        """The wrapped backend (for backend-specific calls)."""
        return self._kms

    @contextmanager
    def _audited(
        self,
        operation: str,
        key_id: str | None,
        version: int | None,
        context: EncryptionContext | None,
    ) -> Iterator[dict[str, Any]]:
        """Run the body, then log its outcome; ``note`` lets the body report the version."""
        note: dict[str, Any] = {"key_id": key_id, "key_version": version}
        try:
            yield note
        except PatternError as failure:
            self._write(operation, note, context, "denied", type(failure).__name__)
            raise
        except Exception as failure:
            self._write(operation, note, context, "error", type(failure).__name__)
            raise
        self._write(operation, note, context, "ok", None)

    def _write(
        self,
        operation: str,
        note: dict[str, Any],
        context: EncryptionContext | None,
        outcome: str,
        error: str | None,
    ) -> None:
        self._log.record(
            actor=self._actor,
            operation=operation,
            backend=self._kms.backend,
            key_id=note["key_id"],
            key_version=note["key_version"],
            context=context,
            outcome=outcome,
            error=error,
        )

    @staticmethod
    def _ref(wrapped: bytes) -> tuple[str | None, int | None]:
        try:
            ref, _ = parse_wrapped(wrapped)
        except PatternError:
            return None, None
        return ref.key_id, ref.version

    def create_key(self, name: str) -> str:
        with self._audited("create_key", name, None, None) as note:
            key_id = self._kms.create_key(name)
            note["key_id"] = key_id
            note["key_version"] = self._kms.key_info(key_id).latest_version
        return key_id

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        with self._audited("generate_data_key", key_id, None, context) as note:
            data_key = self._kms.generate_data_key(key_id, context)
            note["key_version"] = self._ref(data_key.wrapped)[1]
        return data_key

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        key_id, version = self._ref(wrapped)
        with self._audited("decrypt_data_key", key_id, version, context):
            return self._kms.decrypt_data_key(wrapped, context)
        raise AssertionError("unreachable")  # pragma: no cover

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        key_id, version = self._ref(wrapped)
        with self._audited("rewrap_data_key", key_id, version, context) as note:
            new_wrapped = self._kms.rewrap_data_key(wrapped, context)
            note["key_version"] = self._ref(new_wrapped)[1]
        return new_wrapped

    def rotate_key(self, key_id: str) -> int | None:
        with self._audited("rotate_key", key_id, None, None) as note:
            version = self._kms.rotate_key(key_id)
            note["key_version"] = version
        return version

    def disable_key(self, key_id: str) -> None:
        with self._audited("disable_key", key_id, None, None):
            self._kms.disable_key(key_id)

    def enable_key(self, key_id: str) -> None:
        with self._audited("enable_key", key_id, None, None):
            self._kms.enable_key(key_id)

    def destroy_key(self, key_id: str) -> None:
        with self._audited("destroy_key", key_id, None, None):
            self._kms.destroy_key(key_id)

    def set_min_decryption_version(self, key_id: str, version: int) -> None:
        """Retire key versions below ``version`` (LocalKms, Vault); audited like the rest."""
        setter = getattr(self._kms, "set_min_decryption_version", None)
        with self._audited("set_min_decryption_version", key_id, version, None):
            if setter is None:
                raise ConfigurationError(
                    f"the {self._kms.backend} backend has no minimum decryption version"
                )
            setter(key_id, version)

    def key_info(self, key_id: str) -> KeyInfo:
        return self._kms.key_info(key_id)
