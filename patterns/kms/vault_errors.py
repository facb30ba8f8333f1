"""How :class:`~patterns.kms.vault.VaultTransitKms` turns hvac's failures into our two errors.

Vault's own messages are not passed on: they can quote request details, and the caller needs
the failure class and the fix, not the server's wording. hvac and requests are imported when
a backend is built, not when this module is, so the package imports without them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Final

from patterns.errors import DecryptionError, KmsError

__all__ = ["HvacErrors", "vault_call"]

_TAMPERED: Final = ("message authentication failed", "invalid ciphertext", "could not decode")
#: What each key-administration call needs in the admin token's policy ({m}: mount, {k}: key).
_ADMIN_NEEDS: Final = {
    "create_key": "create and update on {m}/keys/{k}",
    "key_info": "read on {m}/keys/{k}",
    "rotate_key": "update on {m}/keys/{k}/rotate",
    "set_min_decryption_version": "update on {m}/keys/{k}/config",
    "destroy_key": "update on {m}/keys/{k}/config and delete on {m}/keys/{k}",
}


@dataclass(frozen=True, slots=True)
class HvacErrors:
    """The exception classes to catch: any hvac or requests failure, the transport ones
    among them, and hvac's "no such path" (a policy not created yet). Empty without hvac:
    a client object implies hvac is installed, so there is nothing to catch then."""

    failures: tuple[type[BaseException], ...] = ()
    transport: tuple[type[BaseException], ...] = ()
    missing: tuple[type[BaseException], ...] = ()

    @classmethod
    def load(cls) -> HvacErrors:
        try:
            exceptions = importlib.import_module("hvac.exceptions")
            requests = importlib.import_module("requests")
        except ImportError:  # pragma: no cover - a client object implies hvac is installed
            return cls()
        return cls(
            failures=(exceptions.VaultError, requests.RequestException),
            transport=(requests.RequestException, exceptions.VaultDown),
            missing=(exceptions.InvalidPath,),
        )


def vault_call(
    errors: HvacErrors, mount: str, what: str, key_id: str, function: Any, /, **kwargs: Any
) -> dict[str, Any]:
    """Run one hvac call on ``mount`` and turn its failures into our two error classes."""
    try:
        response = function(mount_point=mount, **kwargs)
    except errors.failures as failure:
        kind = type(failure).__name__
        text = str(failure).lower()
        if isinstance(failure, errors.transport):
            raise KmsError(f"Vault is unreachable during {what}; refusing to continue") from None
        if kind == "Forbidden" and what in _ADMIN_NEEDS:
            needs = _ADMIN_NEEDS[what].format(m=mount, k=key_id)
            raise KmsError(
                f"Vault denied {what} on key {key_id!r}: this token lacks {needs}. Key "
                "administration needs the admin token (admin_token=, "
                "PATTERNS_VAULT_ADMIN_TOKEN) with the policy in docs/kms.md"
            ) from None
        if kind == "Forbidden":
            raise KmsError(
                f"Vault denied {what} with key {key_id!r}: the key is disabled for this "
                "application (its policy denies it) or the token lacks permission"
            ) from None
        if kind == "InvalidRequest" and any(marker in text for marker in _TAMPERED):
            raise DecryptionError(
                "cannot decrypt: the wrapped data key was modified or the encryption "
                "context differs from the one it was created with"
            ) from None
        if "too old" in text:
            raise KmsError(
                f"key {key_id!r}: this version is below min_decryption_version; rewrap "
                "data before retiring a version"
            ) from None
        if "not found" in text or kind == "InvalidPath":
            raise KmsError(
                f"Vault has no transit key {key_id!r} (never created, or destroyed)"
            ) from None
        raise KmsError(f"Vault refused {what} with key {key_id!r} ({kind})") from None
    return dict(response.get("data") or {}) if isinstance(response, dict) else {}
