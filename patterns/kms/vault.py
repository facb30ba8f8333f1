"""VaultTransitKms: customer keys in HashiCorp Vault or OpenBao's transit engine, via ``hvac``.

Transit does the data-key work server-side: ``datakey/plaintext`` returns a fresh key and its
wrapped form, ``decrypt`` unwraps it, ``rewrap`` moves it to the newest key version without
revealing it, ``rotate`` adds versions and ``min_decryption_version`` retires old ones. Keys
are created with ``derived=true``, so the encryption context feeds Vault's key derivation
(HKDF) and a wrapped key only opens under the same context.

Transit has no per-key "disabled" switch: in Vault, access is the ACL policy. So
:meth:`VaultTransitKms.disable_key` rewrites the application token's policy (``app_policy``)
to deny that key's paths, which Vault enforces on the very next request; ``enable_key``
grants them back. A policy binds only a token it applies to: a root token ignores policies,
a token without ``app_policy`` is not touched by it, and a token that may rewrite
``app_policy`` can undo the deny. So ``disable_key`` then checks the application's token
with Vault and raises :class:`KmsError` unless that token is not root, carries
``app_policy``, has ``deny`` on every data-key path of the key and cannot write the policy:
a disable that does not bind the application never reports success. Which token it checks:
with ``app_token_accessor`` (the accessor of the token the application is deployed with;
an accessor can look a token up, never use it), the admin token asks about that token
(``auth/token/lookup-accessor``, ``sys/capabilities-accessor``); without it, the client token
is checked (``auth/token/lookup-self``, ``sys/capabilities-self``), which proves something
only if it is the deployed token, so a client that is the admin token is refused
(:mod:`patterns.kms.vault_binding`). The policy rewrite is :mod:`patterns.kms.vault_policy`.
``destroy_key`` sets ``deletion_allowed`` and deletes the key: crypto-shredding.

Two tokens, neither of them root: the application's (``client``) does the routine data-key
calls and nothing else, and is never replaced by the admin token for them; the admin token
(``admin_client``) manages keys and the application's policy. An operation a token is not
allowed to do fails with a :class:`KmsError` that names the capability it needs
(``docs/kms.md`` lists them per operation).

``hvac`` is imported only by :meth:`VaultTransitKms.connect`, so this package imports
without it (``pip install 'anthropic-key-patterns[kms]'``).
How hvac's failures become :class:`KmsError` or :class:`DecryptionError` is in
:mod:`patterns.kms.vault_errors`.
"""

from __future__ import annotations

import base64
import importlib
import re
from typing import Any, Final

from patterns.errors import ConfigurationError, DecryptionError, KmsError
from patterns.kms.protocol import (
    DataKey,
    EncryptionContext,
    KeyInfo,
    KeyRef,
    canonical_context,
    frame_wrapped,
    parse_wrapped,
    require_tls,
)
from patterns.kms.vault_errors import HvacErrors, vault_call
from patterns.kms.vault_policy import AppPolicy

__all__ = ["VaultTransitKms"]

_VERSION_RE: Final = re.compile(r"^vault:v(\d+):")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _field(data: dict[str, Any], name: str) -> str:
    """One field of a Vault response; a missing one is a KmsError, not a KeyError."""
    value = data.get(name)
    if value is None:
        raise KmsError(f"unexpected Vault response: no {name!r} (is the mount a transit engine?)")
    return str(value)


class VaultTransitKms:
    """A :class:`~patterns.kms.protocol.Kms` backed by a Vault/OpenBao transit mount."""

    backend = "vault"

    def __init__(
        self,
        client: Any,
        *,
        mount: str = "transit",
        admin_client: Any | None = None,
        app_policy: str | None = None,
        app_token_accessor: str | None = None,
    ) -> None:
        """``client`` does the data-key calls (the application's token); ``admin_client``
        manages keys and the ``app_policy`` ACL (defaults to ``client``);
        ``app_token_accessor`` names the deployed application token that ``disable_key``
        must prove is bound (see the module docstring)."""
        self._client = client
        self._admin = admin_client if admin_client is not None else client
        self._mount = mount
        self._errors = HvacErrors.load()
        self._policy = AppPolicy(
            app_policy,
            client=client,
            admin=self._admin,
            accessor=app_token_accessor,
            mount=mount,
            errors=self._errors,
        )

    @classmethod
    def connect(
        cls,
        url: str,
        token: str,
        *,
        mount: str = "transit",
        admin_token: str | None = None,
        app_policy: str | None = None,
        app_token_accessor: str | None = None,
        timeout: float = 5.0,
        allow_insecure: bool = False,
    ) -> VaultTransitKms:
        """Build hvac clients for ``url`` (tokens go in headers, never in the URL).

        ``url`` must be https unless it is loopback (see :func:`require_tls`).
        """
        require_tls(url, service="Vault", allow_insecure=allow_insecure)
        try:
            hvac = importlib.import_module("hvac")
        except ImportError as error:
            raise ConfigurationError(
                "VaultTransitKms needs hvac: pip install 'anthropic-key-patterns[kms]'"
            ) from error
        client = hvac.Client(url=url, token=token, timeout=timeout)
        admin = hvac.Client(url=url, token=admin_token, timeout=timeout) if admin_token else None
        return cls(
            client,
            mount=mount,
            admin_client=admin,
            app_policy=app_policy,
            app_token_accessor=app_token_accessor,
        )

    def _call(self, what: str, key_id: str, function: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one hvac call on this mount (errors mapped by :func:`vault_call`)."""
        return vault_call(self._errors, self._mount, what, key_id, function, **kwargs)

    # -- the Kms protocol ------------------------------------------------------------------------
    def create_key(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigurationError("a key name is 1-64 letters, digits, '.', '_' or '-'")
        transit = self._admin.secrets.transit
        self._call(
            "create_key", name, transit.create_key, name=name, derived=True, key_type="aes256-gcm96"
        )
        if self._policy.name is not None:
            self._policy.set_access(name, True)
        return name

    def _native(self, wrapped: bytes) -> tuple[KeyRef, str]:
        ref, native = parse_wrapped(wrapped)
        try:
            return ref, native.decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("cannot decrypt: the wrapped data key is malformed") from None

    def _frame(self, key_id: str, ciphertext: str) -> bytes:
        match = _VERSION_RE.match(ciphertext)
        version = int(match.group(1)) if match else None
        return frame_wrapped(KeyRef(key_id, version), ciphertext.encode("ascii"))

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        derivation = _b64(canonical_context(context))
        data = self._call(
            "generate_data_key",
            key_id,
            self._client.secrets.transit.generate_data_key,
            name=key_id,
            key_type="plaintext",
            context=derivation,
        )
        plaintext = base64.b64decode(_field(data, "plaintext"))
        return DataKey(plaintext, self._frame(key_id, _field(data, "ciphertext")))

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        derivation = _b64(canonical_context(context))
        ref, ciphertext = self._native(wrapped)
        data = self._call(
            "decrypt_data_key",
            ref.key_id,
            self._client.secrets.transit.decrypt_data,
            name=ref.key_id,
            ciphertext=ciphertext,
            context=derivation,
        )
        return base64.b64decode(_field(data, "plaintext"))

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        derivation = _b64(canonical_context(context))
        ref, ciphertext = self._native(wrapped)
        data = self._call(
            "rewrap_data_key",
            ref.key_id,
            self._client.secrets.transit.rewrap_data,
            name=ref.key_id,
            ciphertext=ciphertext,
            context=derivation,
        )
        return self._frame(ref.key_id, _field(data, "ciphertext"))

    def rotate_key(self, key_id: str) -> int | None:
        if not self._policy.allows(key_id, strict=True):
            raise KmsError(f"customer key {key_id!r} is disabled; enable it to rotate it")
        self._call("rotate_key", key_id, self._admin.secrets.transit.rotate_key, name=key_id)
        return self.key_info(key_id).latest_version

    def set_min_decryption_version(self, key_id: str, version: int) -> None:
        """Refuse data keys wrapped by versions below ``version`` (enforced by Vault)."""
        transit = self._admin.secrets.transit
        self._call(
            "set_min_decryption_version",
            key_id,
            transit.update_key_configuration,
            name=key_id,
            min_decryption_version=version,
        )

    def disable_key(self, key_id: str) -> None:
        """Deny the key's data-key paths in the app policy, then confirm with Vault that the
        application's token is bound by it (see the module docstring)."""
        self.key_info(key_id)  # unknown keys fail clearly
        self._policy.set_access(key_id, False)
        self._policy.confirm_denied(key_id)

    def enable_key(self, key_id: str) -> None:
        self.key_info(key_id)
        self._policy.set_access(key_id, True)

    def destroy_key(self, key_id: str) -> None:
        transit = self._admin.secrets.transit
        self._call(
            "destroy_key",
            key_id,
            transit.update_key_configuration,
            name=key_id,
            deletion_allowed=True,
        )
        self._call("destroy_key", key_id, transit.delete_key, name=key_id)
        if self._policy.name is not None:
            self._policy.set_access(key_id, False)

    def key_info(self, key_id: str) -> KeyInfo:
        data = self._call("key_info", key_id, self._admin.secrets.transit.read_key, name=key_id)
        return KeyInfo(
            key_id=key_id,
            name=str(data.get("name", key_id)),
            latest_version=int(_field(data, "latest_version")),
            min_decryption_version=int(_field(data, "min_decryption_version")),
            enabled=self._policy.allows(key_id),
            backend=self.backend,
        )

    def __repr__(self) -> str:
        return f"VaultTransitKms(mount={self._mount!r}, app_policy={self._policy.name!r})"
