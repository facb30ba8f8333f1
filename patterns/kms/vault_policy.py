"""The application token's ACL policy: the per-key disable switch Vault transit lacks.

Transit has no per-key "disabled" flag; in Vault, access is the ACL policy. So disabling a
key rewrites ``app_policy`` (the policy of the application's token) to deny that key's
data-key paths, which Vault enforces on the very next request, and enabling grants them
back; :func:`~patterns.kms.vault_binding.confirm_denied` then proves the deny binds the
token the application is deployed with (see :mod:`patterns.kms.vault`).
"""

from __future__ import annotations

import json
from typing import Any

from patterns.errors import KmsError
from patterns.kms.vault_binding import VaultTokens, confirm_denied
from patterns.kms.vault_errors import HvacErrors

__all__ = ["AppPolicy", "key_paths"]


def key_paths(mount: str, key_id: str) -> list[str]:
    """The data-key paths of one key: what the application's token is granted or denied."""
    return [
        f"{mount}/datakey/plaintext/{key_id}",
        f"{mount}/decrypt/{key_id}",
        f"{mount}/rewrap/{key_id}",
    ]


class AppPolicy:
    """Grants and denies keys in the ACL policy ``name`` (``None``: no policy is managed,
    so every key counts as enabled and none can be disabled), through the admin client."""

    def __init__(
        self,
        name: str | None,
        *,
        client: Any,
        admin: Any,
        accessor: str | None,
        mount: str,
        errors: HvacErrors,
    ) -> None:
        self.name = name
        self._client = client
        self._admin = admin
        self._accessor = accessor
        self._mount = mount
        self._errors = errors

    def read(self) -> dict[str, Any]:
        """Return the app policy's rules; a policy that does not exist yet is empty.

        Any other failure raises: rewriting a policy we could not read would drop the grants
        of every other key, so this fails closed instead.
        """
        try:
            response = self._admin.sys.read_policy(name=self.name)
        except self._errors.missing:
            return {"path": {}}
        except self._errors.failures as failure:
            raise self._error("read", failure) from None
        try:
            rules = json.loads(response["data"]["rules"])
            if not isinstance(rules, dict) or not isinstance(rules.setdefault("path", {}), dict):
                raise TypeError("unexpected policy shape")
        except (ValueError, KeyError, TypeError):
            raise KmsError(
                f"Vault policy {self.name!r} is not a JSON policy managed by this package"
            ) from None
        return rules

    def set_access(self, key_id: str, allowed: bool) -> None:
        """Grant or deny the app's data-key paths for one key.

        A read-modify-write of one policy: run key administration from one place at a time,
        since Vault ACL policies have no compare-and-set.
        """
        if self.name is None:
            raise KmsError(
                "Vault transit has no per-key disable switch: configure app_policy (the ACL "
                "policy of the application's token) so that disable_key can revoke access"
            )
        rules = self.read()
        for path in key_paths(self._mount, key_id):
            rules["path"][path] = {"capabilities": ["update"] if allowed else ["deny"]}
        try:
            self._admin.sys.create_or_update_policy(name=self.name, policy=rules)
        except self._errors.failures as failure:
            raise self._error("update", failure) from None

    def _error(self, action: str, failure: BaseException) -> KmsError:
        if isinstance(failure, self._errors.transport):
            return KmsError(f"Vault is unreachable: cannot {action} policy {self.name!r}")
        if type(failure).__name__ == "Forbidden":
            return KmsError(
                f"Vault denied the {action} of policy {self.name!r}: key "
                "administration (create, rotate, enable, disable, destroy) needs read, create "
                f"and update on sys/policy/{self.name} (the admin token, not the "
                "application's)"
            )
        return KmsError(f"cannot {action} Vault policy {self.name!r}")

    def allows(self, key_id: str, *, strict: bool = False) -> bool:
        """Whether the app policy grants the key; an unreadable policy reads as "no", or
        raises with ``strict`` (so a permission problem is not reported as "disabled")."""
        if self.name is None:
            return True
        try:
            rules = self.read()
        except KmsError:
            if strict:
                raise
            return False  # unknown means not usable: fail closed
        grant = rules["path"].get(key_paths(self._mount, key_id)[0], {})
        return "deny" not in grant.get("capabilities", ["deny"])

    def confirm_denied(self, key_id: str) -> None:
        """Prove the deny binds the application's token (see :mod:`.vault_binding`)."""
        confirm_denied(
            VaultTokens(self._client, self._admin, self._accessor, self._errors.failures),
            app_policy=str(self.name),
            key_id=key_id,
            key_paths=key_paths(self._mount, key_id),
        )
