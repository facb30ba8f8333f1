"""AwsKms: customer-managed keys in AWS KMS through ``boto3``.

Mapping onto the contract: ``GenerateDataKey`` (AES_256) returns the data key and its
``CiphertextBlob``; ``Decrypt`` unwraps it, with ``KeyId`` pinned as AWS recommends;
``ReEncrypt`` moves it to the key's current backing key inside KMS; ``RotateKeyOnDemand``
adds a backing key (KMS keeps the old ones, so nothing needs re-encrypting);
``DisableKey``/``EnableKey`` toggle use; ``ScheduleKeyDeletion`` (7 days at the least) makes
the key unusable at once and destroys it when the window ends. The encryption context is
KMS's ``EncryptionContext``: authenticated, and written to CloudTrail in clear.

AWS does not expose key versions: ``key_info().latest_version`` counts rotations, and wrapped
keys carry no version (KMS picks the right backing key itself). ``boto3`` is imported only
by :meth:`AwsKms.connect`, so this package imports without it.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

from patterns.errors import ConfigurationError, DecryptionError, KmsError, PatternError
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

__all__ = ["AwsKms", "aws_error"]

_NAME_RE: Final = re.compile(r"^[A-Za-z0-9/_-]{1,200}$")
_DELETION_WINDOW_DAYS: Final = 7  # the minimum AWS allows
_TAMPERED_CODES: Final = {"InvalidCiphertextException", "IncorrectKeyException"}
_STATE_CODES: Final = {"DisabledException", "KMSInvalidStateException"}


def aws_error(failure: BaseException, what: str, key_id: str | None) -> PatternError:
    """Translate a botocore error into our error classes, without AWS's own wording."""
    response = getattr(failure, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    name = key_id[:80] if key_id else "?"
    if code in _TAMPERED_CODES:
        return DecryptionError(
            "cannot decrypt: the wrapped data key was modified, belongs to another key, or the "
            "encryption context differs from the one it was created with"
        )
    if code in _STATE_CODES:
        return KmsError(
            f"AWS KMS key {name!r} is disabled or pending deletion; {what} refused "
            "(enable it, or cancel the deletion, to use it again)"
        )
    if code == "NotFoundException":
        return KmsError(f"AWS KMS has no key {name!r}")
    if code in {"AccessDeniedException", "UnrecognizedClientException"}:
        return KmsError(f"AWS KMS denied {what} on key {name!r}: check the key policy and IAM")
    if not code:
        return KmsError(f"AWS KMS is unreachable during {what}; refusing to continue")
    return KmsError(f"AWS KMS refused {what} on key {name!r} ({code})")


class AwsKms:
    """A :class:`~patterns.kms.protocol.Kms` backed by AWS KMS (or a KMS-compatible endpoint)."""

    backend = "aws"

    def __init__(self, client: Any) -> None:
        """``client`` is a ``boto3.client("kms")``; its credentials come from the usual chain."""
        self._client = client
        botocore = importlib.import_module("botocore.exceptions")
        self._errors: tuple[type[BaseException], ...] = (
            botocore.ClientError,
            botocore.BotoCoreError,
        )

    @classmethod
    def connect(
        cls,
        *,
        region: str,
        endpoint_url: str | None = None,
        allow_insecure: bool = False,
        **client_options: Any,
    ) -> AwsKms:
        """Build a boto3 KMS client (``endpoint_url`` for a local KMS such as moto; it must be
        https unless it is loopback)."""
        if endpoint_url is not None:
            require_tls(endpoint_url, service="AWS KMS", allow_insecure=allow_insecure)
        try:
            boto3 = importlib.import_module("boto3")
        except ImportError as error:
            raise ConfigurationError(
                "AwsKms needs boto3: pip install 'anthropic-key-patterns[kms]'"
            ) from error
        client = boto3.client(
            "kms", region_name=region, endpoint_url=endpoint_url, **client_options
        )
        return cls(client)

    def _call(self, what: str, key_id: str | None, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = getattr(self._client, method)(**kwargs)
        except self._errors as failure:
            raise aws_error(failure, what, key_id) from None
        return dict(response)

    def create_key(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigurationError("a key name is 1-200 letters, digits, '/', '_' or '-'")
        metadata = self._call(
            "create_key",
            name,
            "create_key",
            Description=name,
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=[{"TagKey": "patterns:name", "TagValue": name}],
        )["KeyMetadata"]
        key_id = str(metadata["KeyId"])
        self._call(
            "create_key", name, "create_alias", AliasName=f"alias/{name}", TargetKeyId=key_id
        )
        return key_id

    def generate_data_key(self, key_id: str, context: EncryptionContext) -> DataKey:
        canonical_context(context)
        response = self._call(
            "generate_data_key",
            key_id,
            "generate_data_key",
            KeyId=key_id,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        wrapped = frame_wrapped(KeyRef(key_id, None), bytes(response["CiphertextBlob"]))
        return DataKey(bytes(response["Plaintext"]), wrapped)

    def decrypt_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        canonical_context(context)
        ref, native = parse_wrapped(wrapped)
        response = self._call(
            "decrypt_data_key",
            ref.key_id,
            "decrypt",
            CiphertextBlob=native,
            KeyId=ref.key_id,
            EncryptionContext=dict(context),
        )
        return bytes(response["Plaintext"])

    def rewrap_data_key(self, wrapped: bytes, context: EncryptionContext) -> bytes:
        canonical_context(context)
        ref, native = parse_wrapped(wrapped)
        response = self._call(
            "rewrap_data_key",
            ref.key_id,
            "re_encrypt",
            CiphertextBlob=native,
            SourceKeyId=ref.key_id,
            SourceEncryptionContext=dict(context),
            DestinationKeyId=ref.key_id,
            DestinationEncryptionContext=dict(context),
        )
        return frame_wrapped(KeyRef(ref.key_id, None), bytes(response["CiphertextBlob"]))

    def rotate_key(self, key_id: str) -> int | None:
        self._call("rotate_key", key_id, "rotate_key_on_demand", KeyId=key_id)
        return self.key_info(key_id).latest_version

    def disable_key(self, key_id: str) -> None:
        self._call("disable_key", key_id, "disable_key", KeyId=key_id)

    def enable_key(self, key_id: str) -> None:
        self._call("enable_key", key_id, "enable_key", KeyId=key_id)

    def destroy_key(self, key_id: str) -> None:
        """Schedule deletion after the minimum 7-day window; the key is unusable at once."""
        self._call(
            "destroy_key",
            key_id,
            "schedule_key_deletion",
            KeyId=key_id,
            PendingWindowInDays=_DELETION_WINDOW_DAYS,
        )

    def key_info(self, key_id: str) -> KeyInfo:
        metadata = self._call("key_info", key_id, "describe_key", KeyId=key_id)["KeyMetadata"]
        rotations = self._call("key_info", key_id, "list_key_rotations", KeyId=key_id)
        return KeyInfo(
            key_id=key_id,
            name=str(metadata.get("Description") or key_id),
            latest_version=1 + len(rotations.get("Rotations", [])),
            min_decryption_version=None,
            enabled=metadata.get("KeyState") == "Enabled",
            backend=self.backend,
        )

    def __repr__(self) -> str:
        return "AwsKms()"
