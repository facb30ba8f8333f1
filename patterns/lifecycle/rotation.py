"""KMS rotation as one step: rotate the customer key, then rewrap every stored secret.

Rotating a customer key only changes which version wraps *new* data keys; every secret
sealed before still depends on the old version. Rewrapping moves each one to the newest
version inside the KMS (:func:`patterns.kms.rewrap`: the secret and its data key are never
returned to us). Only when every secret is rewrapped can the old version be retired
(``set_min_decryption_version``); retiring it earlier makes the stragglers unreadable, so
:func:`rewrap_store` reports them and :mod:`patterns.lifecycle.incidents` refuses to retire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patterns.errors import DecryptionError, KmsError
from patterns.kms import Kms, describe_sealed, rewrap
from patterns.lifecycle.sealed import SealedStore

__all__ = ["RewrapReport", "latest_version", "rewrap_store", "rotate_and_rewrap"]


@dataclass(slots=True)
class RewrapReport:
    """Counts per outcome, and the names (never values) of the secrets that need a look."""

    key_id: str
    rotated_to: int | None = None
    latest: int | None = None
    rewrapped: int = 0
    already_current: int = 0
    other_keys: int = 0  # sealed under another customer key: not ours to move
    changed_meanwhile: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every secret of this key is at the latest version."""
        return not self.failed and not self.changed_meanwhile

    def lines(self) -> list[str]:
        out = []
        if self.rotated_to is not None:
            out.append(f"rotated {self.key_id} to version {self.rotated_to}")
        out.append(
            f"rewrapped {self.rewrapped} secret(s) to version {self.latest}; "
            f"{self.already_current} already there"
            + (f"; {self.other_keys} under other keys left alone" if self.other_keys else "")
        )
        if self.changed_meanwhile:
            out.append(
                f"{len(self.changed_meanwhile)} changed during the run (run again): "
                + ", ".join(self.changed_meanwhile[:10])
            )
        if self.failed:
            out.append(
                f"{len(self.failed)} could not be rewrapped (wrong context or damaged): "
                + ", ".join(self.failed[:10])
            )
        return out


def latest_version(kms: Kms, key_id: str) -> int | None:
    """The customer key's newest version (None where the backend hides versions: AWS)."""
    return kms.key_info(key_id).latest_version


def rewrap_store(kms: Kms, key_id: str, store: SealedStore) -> RewrapReport:
    """Rewrap every secret of ``store`` sealed under ``key_id`` below its latest version.

    Idempotent: a secret already at the latest version is not touched (no KMS call), so a
    run interrupted half-way is finished by running it again.
    """
    latest = latest_version(kms, key_id)
    report = RewrapReport(key_id, latest=latest)
    for name, sealed, context in store.items():
        try:
            ref = describe_sealed(sealed)
        except DecryptionError:
            report.failed.append(name)
            continue
        if ref.key_id != key_id:
            report.other_keys += 1
            continue
        if latest is not None and ref.version == latest:
            report.already_current += 1
            continue
        try:
            moved = rewrap(sealed, kms, context, expected_key_id=key_id)
        except (DecryptionError, KmsError):
            report.failed.append(name)
            continue
        if store.replace(name, sealed, moved):
            report.rewrapped += 1
        else:
            report.changed_meanwhile.append(name)
    return report


def rotate_and_rewrap(kms: Kms, key_id: str, store: SealedStore) -> RewrapReport:
    """Rotate ``key_id`` to a new version, then rewrap every secret of ``store`` to it."""
    rotated = kms.rotate_key(key_id)
    report = rewrap_store(kms, key_id, store)
    report.rotated_to = rotated
    return report
