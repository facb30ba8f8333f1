"""Proof that a Vault ``deny`` binds the application's token, for ``disable_key``.

A policy binds only the tokens it applies to: a root token ignores every policy, a token
without the application's policy is not touched by it, and a token that may write that
policy can take the deny out again. And the question must be asked about the token the
application is deployed with: asking "whatever token is configured as the client" proves
nothing when that is the admin token (Vault answers ``deny`` for a token without transit
grants while the deployed token still decrypts: review finding F3).

So :func:`confirm_denied` checks, after the deny was written: the token is not root, carries
the application's policy, has ``deny`` on each data-key path of the key and no write on the
policy. With an accessor (of the deployed token; it can look a token up, never use it) the
admin token asks (``auth/token/lookup-accessor``, ``sys/capabilities-accessor``); without
one the client asks about itself (``auth/token/lookup-self``, ``sys/capabilities-self``),
and a client that is the admin token is refused.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Final

from patterns.errors import KmsError

__all__ = ["VaultTokens", "confirm_denied"]

_POLICY_WRITES: Final = frozenset({"create", "update", "sudo", "root"})


@dataclass(frozen=True, slots=True)
class VaultTokens:
    """The hvac clients of a :class:`~patterns.kms.vault.VaultTransitKms` and how to ask."""

    client: Any
    admin: Any
    accessor: str | None
    errors: tuple[type[BaseException], ...]  # hvac's and requests' failures

    def same_token(self) -> bool:
        """Whether the client and the admin are one token (one object, or equal tokens)."""
        if self.admin is self.client:
            return True
        mine, theirs = getattr(self.client, "token", None), getattr(self.admin, "token", None)
        return (
            isinstance(mine, str)
            and isinstance(theirs, str)
            and hmac.compare_digest(mine.encode(), theirs.encode())
        )


def _unconfirmed(app_policy: str, key_id: str, why: str) -> KmsError:
    return KmsError(
        f"key {key_id!r} is denied in policy {app_policy!r}, but the disable is not "
        f"confirmed for the application: {why}; treat the key as still usable by the "
        "application until this is fixed (docs/kms.md, 'Vault/OpenBao')"
    )


def _facts(
    tokens: VaultTokens, app_policy: str, key_id: str, paths: list[str]
) -> tuple[list[str], dict[str, Any]]:
    """The application token's policies and its capabilities on ``paths``."""
    try:
        if tokens.accessor is not None:
            identity = tokens.admin.auth.token.lookup_accessor(tokens.accessor)
            answer = tokens.admin.sys.get_capabilities(paths=paths, accessor=tokens.accessor)
        else:
            identity = tokens.client.auth.token.lookup_self()
            answer = tokens.client.sys.get_capabilities(paths=paths)
    except tokens.errors:
        how = (
            "the admin token needs update on auth/token/lookup-accessor and "
            "sys/capabilities-accessor, and the accessor must name a live token"
            if tokens.accessor is not None
            else "the application's token needs read on auth/token/lookup-self and "
            "update on sys/capabilities-self, both in Vault's default policy"
        )
        raise _unconfirmed(
            app_policy, key_id, f"Vault would not tell what the application's token can do ({how})"
        ) from None
    data = identity.get("data") if isinstance(identity, dict) else None
    policies = [str(p) for p in (data or {}).get("policies") or []]
    policies += [str(p) for p in (data or {}).get("identity_policies") or []]
    capabilities = answer.get("data") if isinstance(answer, dict) else None
    return policies, dict(capabilities or {})


def confirm_denied(
    tokens: VaultTokens, *, app_policy: str, key_id: str, key_paths: list[str]
) -> None:
    """Raise :class:`KmsError` unless the deny on ``key_paths`` binds the application."""
    if tokens.accessor is None and tokens.same_token():
        raise _unconfirmed(
            app_policy,
            key_id,
            "the client token is the admin token, so Vault can only say what the admin can "
            "do, not the deployed application (and a token that may rewrite the policy can "
            "undo the deny). Configure the application's own token as the client "
            "(PATTERNS_VAULT_TOKEN) and a separate admin token (PATTERNS_VAULT_ADMIN_TOKEN), "
            "or pass app_token_accessor (PATTERNS_VAULT_APP_ACCESSOR) so the admin checks "
            "the deployed token",
        )
    policy_path = f"sys/policy/{app_policy}"
    policies, capabilities = _facts(tokens, app_policy, key_id, [*key_paths, policy_path])
    if "root" in policies or any("root" in (capabilities.get(p) or []) for p in key_paths):
        raise _unconfirmed(app_policy, key_id, "it is a root token, which no policy binds")
    if app_policy not in policies:
        raise _unconfirmed(
            app_policy,
            key_id,
            f"the token does not carry policy {app_policy!r}, so the deny does not apply to "
            "it (whatever its other policies grant)",
        )
    if any(capabilities.get(path) != ["deny"] for path in key_paths):
        raise _unconfirmed(app_policy, key_id, "Vault still grants it the key's data-key paths")
    writes = _POLICY_WRITES & set(capabilities.get(policy_path) or [])
    if writes:
        raise _unconfirmed(
            app_policy,
            key_id,
            f"the token may write policy {app_policy!r} ({', '.join(sorted(writes))}) and so "
            "can undo the deny; give the application a token without that grant",
        )
