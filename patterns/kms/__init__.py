"""Pattern 3: bring-your-own-key with a KMS (envelope encryption, rotation, audit).

>>> from patterns.kms import LocalKms, seal, unseal
>>> kms = LocalKms(path, master_key=master)            # or VaultTransitKms / AwsKms
>>> key_id = kms.create_key("tenant-acme")
>>> sealed = seal(api_key, kms, key_id, {"tenant": "acme", "user": "u-42"})
>>> unseal(sealed, kms, {"tenant": "acme", "user": "u-42"})   # the same context, or it fails

Modules: :mod:`.protocol` (the ``Kms`` contract), :mod:`.envelope` (seal/unseal/rewrap),
:mod:`.audit` (hash-chained audit log), :mod:`.caching` (optional data-key cache),
:mod:`.local`, :mod:`.vault` (with :mod:`.vault_errors` and :mod:`.vault_policy`) and
:mod:`.aws` (backends; hvac and boto3 are imported lazily),
:mod:`.explorer` (the model behind the notebook's key-hierarchy widget) and
:mod:`.environment` (choose a real KMS from ``PATTERNS_*`` variables).
"""

from __future__ import annotations

from patterns.kms.audit import AuditedKms, AuditLog, AuditReport, read_audit_log, verify_audit_log
from patterns.kms.aws import AwsKms
from patterns.kms.caching import CacheStats, CachingKms
from patterns.kms.envelope import (
    SEALED_PREFIX,
    describe_sealed,
    rewrap,
    seal,
    unseal,
    unseal_api_key,
)
from patterns.kms.local import LocalKms
from patterns.kms.protocol import (
    DataKey,
    EncryptionContext,
    KeyInfo,
    KeyRef,
    Kms,
    canonical_context,
)
from patterns.kms.vault import VaultTransitKms

__all__ = [
    "SEALED_PREFIX",
    "AuditLog",
    "AuditReport",
    "AuditedKms",
    "AwsKms",
    "CacheStats",
    "CachingKms",
    "DataKey",
    "EncryptionContext",
    "KeyInfo",
    "KeyRef",
    "Kms",
    "LocalKms",
    "VaultTransitKms",
    "canonical_context",
    "describe_sealed",
    "read_audit_log",
    "rewrap",
    "seal",
    "unseal",
    "unseal_api_key",
    "verify_audit_log",
]
