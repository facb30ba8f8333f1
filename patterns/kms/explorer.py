"""The model behind the notebook's key-hierarchy explorer: a tenant's customer key, the
users' sealed API keys, and which of them can still be read after each action.

The widget (:mod:`patterns.widgets.kms`) only draws buttons and this model's
:meth:`KeyHierarchyExplorer.summary`; every action runs the real envelope code against a real
:class:`~patterns.kms.local.LocalKms`, through the audit log.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patterns.errors import KmsError, PatternError
from patterns.keys import demo_key
from patterns.kms.audit import AuditedKms, AuditLog, verify_audit_log
from patterns.kms.envelope import describe_sealed, rewrap, seal, unseal_api_key
from patterns.kms.local import LocalKms
from patterns.kms.protocol import EncryptionContext, Kms

__all__ = ["ACTIONS", "KeyHierarchyExplorer", "SecretRow", "backend_tour"]

#: The actions the explorer offers, in the order the widget shows them.
ACTIONS = ("rotate", "rewrap_all", "disable", "enable", "destroy")


@dataclass(frozen=True, slots=True)
class SecretRow:
    """One stored secret as the explorer shows it (never the secret itself)."""

    user: str
    fingerprint: str
    key_version: int | None
    readable: bool
    reason: str


class KeyHierarchyExplorer:
    """Customer key -> one data key per user -> that user's API key, all in ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        tenant: str = "acme",
        users: Sequence[str] = ("alice", "bob", "carol"),
    ) -> None:
        folder = Path(directory)
        self.audit_path = folder / "audit.jsonl"
        self.kms = AuditedKms(
            LocalKms(folder / "keys.json", master_key=os.urandom(32)),
            AuditLog(self.audit_path),
            actor="explorer",
        )
        self.tenant = tenant
        self.key_id = self.kms.create_key(f"tenant-{tenant}")
        self.sealed: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self.log: list[str] = []
        for user in users:
            key = demo_key(f"explorer-{user}")
            self.sealed[user] = seal(key, self.kms, self.key_id, self.context(user))
            self.fingerprints[user] = key.fingerprint

    def context(self, user: str) -> EncryptionContext:
        """The encryption context that binds a sealed key to its tenant and user."""
        return {"tenant": self.tenant, "user": user}

    def act(self, action: str) -> str:
        """Run one of :data:`ACTIONS`; return a one-line result (errors reported, not raised)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
        try:
            if action == "rotate":
                result = (
                    f"rotated: new data keys now use version {self.kms.rotate_key(self.key_id)}"
                )
            elif action == "rewrap_all":
                for user, sealed in self.sealed.items():
                    self.sealed[user] = rewrap(sealed, self.kms, self.context(user))
                result = f"rewrapped {len(self.sealed)} secrets to the newest key version"
            elif action == "disable":
                self.kms.disable_key(self.key_id)
                result = "customer key disabled"
            elif action == "enable":
                self.kms.enable_key(self.key_id)
                result = "customer key enabled"
            else:
                self.kms.destroy_key(self.key_id)
                result = "customer key destroyed (crypto-shredded)"
        except PatternError as failure:
            result = f"{action} refused: {type(failure).__name__}: {failure}"
        self.log.append(result)
        return result

    def rows(self) -> list[SecretRow]:
        """Try to unseal every stored secret and report what happened."""
        rows = []
        for user, sealed in self.sealed.items():
            try:
                key = unseal_api_key(sealed, self.kms, self.context(user))
                readable, reason = key.fingerprint == self.fingerprints[user], "ok"
            except PatternError as failure:
                readable, reason = False, type(failure).__name__
            version = describe_sealed(sealed).version
            rows.append(SecretRow(user, self.fingerprints[user], version, readable, reason))
        return rows

    def summary(self) -> str:
        """A plain-text view of the hierarchy (what the widget shows, and what nbval checks)."""
        info = self.kms.key_info(self.key_id)
        state = "DESTROYED" if info.destroyed else "enabled" if info.enabled else "DISABLED"
        lines = [
            f"customer key {info.key_id!r}: latest version {info.latest_version}, {state}",
            f"{'user':<8} {'api key':<18} {'wrapped by':<11} readable",
        ]
        for row in self.rows():
            mark = "yes" if row.readable else f"NO ({row.reason})"
            wrapped_by = f"v{row.key_version}"
            lines.append(f"{row.user:<8} {row.fingerprint:<18} {wrapped_by:<11} {mark}")
        lines.append(str(verify_audit_log(self.audit_path)))
        return "\n".join(lines)


def backend_tour(
    kms: Kms, key_name: str, *, tenant: str = "acme", user: str = "alice"
) -> list[str]:
    """Run the notebook's story against any backend and describe each step in one line.

    Create a key, seal a demo key, unseal it, try the wrong context, rotate, rewrap, disable,
    try again, enable. Lines name outcomes, never secrets, so they can be printed.
    """
    context = {"tenant": tenant, "user": user}
    key = demo_key(f"tour-{user}")
    lines = [f"backend {kms.backend}: created key {key_name!r}"]
    key_id = kms.create_key(key_name)
    sealed = seal(key, kms, key_id, context)
    opened = unseal_api_key(sealed, kms, context)
    lines.append(f"sealed and unsealed {opened.fingerprint}: match={opened == key}")

    def attempt(label: str, value: str, attempt_context: EncryptionContext) -> None:
        try:
            unseal_api_key(value, kms, attempt_context)
            lines.append(f"{label}: readable")
        except PatternError as failure:
            lines.append(f"{label}: refused ({type(failure).__name__})")

    attempt("wrong tenant", sealed, {**context, "tenant": "evil"})
    version = kms.rotate_key(key_id)
    moved = rewrap(sealed, kms, context)
    lines.append(f"rotated to version {version}; rewrapped to {describe_sealed(moved).version}")
    attempt("after rewrap", moved, context)
    try:
        kms.disable_key(key_id)
    except KmsError as failure:  # e.g. Vault with a root app token: the disable cannot bind it
        lines.append(f"disable not confirmed: {failure}")
    attempt("key disabled", moved, context)
    kms.enable_key(key_id)
    attempt("key enabled again", moved, context)
    return lines
