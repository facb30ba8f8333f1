"""Pick a real KMS from environment variables, for the notebook's "switch backends" cells.

The variables carry a ``PATTERNS_`` prefix on purpose: a shell that already has ``VAULT_ADDR``
or AWS credentials for production must not send a tutorial's test keys there by accident.

- OpenBao/Vault: ``PATTERNS_VAULT_ADDR`` and ``PATTERNS_VAULT_TOKEN`` (the application's
  token); optional ``PATTERNS_VAULT_ADMIN_TOKEN``, ``PATTERNS_VAULT_APP_POLICY``,
  ``PATTERNS_VAULT_APP_ACCESSOR`` (the deployed application token's accessor, which
  ``disable_key`` checks from the admin side) and ``PATTERNS_VAULT_MOUNT`` (default
  ``transit``).
- AWS KMS: ``PATTERNS_AWS_KMS_REGION``; optional ``PATTERNS_AWS_KMS_ENDPOINT`` (moto,
  LocalStack). Credentials come from boto3's usual chain, never from this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from patterns.kms.aws import AwsKms
from patterns.kms.vault import VaultTransitKms

__all__ = ["aws_from_environment", "vault_from_environment"]


def vault_from_environment(
    environ: Mapping[str, str] = os.environ,
) -> VaultTransitKms | None:
    """Return a VaultTransitKms when PATTERNS_VAULT_ADDR and _TOKEN are set, else None."""
    url = environ.get("PATTERNS_VAULT_ADDR", "").strip()
    token = environ.get("PATTERNS_VAULT_TOKEN", "").strip()
    if not url or not token:
        return None
    return VaultTransitKms.connect(
        url,
        token,
        mount=environ.get("PATTERNS_VAULT_MOUNT", "transit").strip() or "transit",
        admin_token=environ.get("PATTERNS_VAULT_ADMIN_TOKEN", "").strip() or None,
        app_policy=environ.get("PATTERNS_VAULT_APP_POLICY", "").strip() or None,
        app_token_accessor=environ.get("PATTERNS_VAULT_APP_ACCESSOR", "").strip() or None,
    )


def aws_from_environment(environ: Mapping[str, str] = os.environ) -> AwsKms | None:
    """Return an AwsKms when PATTERNS_AWS_KMS_REGION is set, else None."""
    region = environ.get("PATTERNS_AWS_KMS_REGION", "").strip()
    if not region:
        return None
    endpoint = environ.get("PATTERNS_AWS_KMS_ENDPOINT", "").strip() or None
    return AwsKms.connect(region=region, endpoint_url=endpoint)
