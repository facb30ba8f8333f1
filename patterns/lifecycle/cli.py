"""The key-lifecycle commands of ``python -m patterns``.

  clean-notebook PATH...     redact secrets and widget state (and outputs) before sharing
  key-age                    track keys by fingerprint; remind when one passes an age
  rotate-kms                 rotate a customer key and rewrap every stored secret
  rotate-org-key             roll a running token proxy's organisation key over (grace)
  incident SCENARIO          user-key-leaked | org-key-leaked | kms-key-compromised
                             (in :mod:`patterns.lifecycle.incident_cli`)

Importing this module is cheap: each command imports what it needs when it runs (the token
proxy's client, the BFF's Redis stores, the KMS), so ``python -m patterns key-age`` does not
load FastAPI.

Secrets come from the environment or files, never from the command line: a LocalKms
master key from ``PATTERNS_KMS_MASTER_KEY`` (base64url, 32 bytes) or a passphrase from
``PATTERNS_KMS_PASSPHRASE``; Vault and AWS from their ``PATTERNS_*`` variables (see
``docs/kms.md``); the token proxy's issuer secret from ``PATTERNS_TOKEN_ISSUER_SECRET``.
Exit status: 0 done, 1 something needs attention (overdue key, incomplete response),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patterns.errors import PatternError
from patterns.keys import key_from_environment
from patterns.lifecycle.age import (
    DEFAULT_MAX_AGE_DAYS,
    KeyInventory,
    check_key_ages,
    webhook_notifier,
)
from patterns.scanning.notebooks import add_clean_arguments, run_clean

if TYPE_CHECKING:
    from patterns.kms import Kms

__all__ = ["add_commands", "kms_from_arguments"]

Handler = Callable[[argparse.Namespace], int]


WEBHOOK_VARIABLE = "PATTERNS_KEY_AGE_WEBHOOK"


def _guarded(handler: Handler, name: str) -> Handler:
    """Turn a PatternError into one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except PatternError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2

    return run


# -- KMS from arguments and the environment -------------------------------------------------


def _add_kms_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-id", required=True, help="the customer key's id")
    parser.add_argument(
        "--secrets", required=True, metavar="DIR", help="directory of *.sealed.json"
    )
    parser.add_argument(
        "--kms-file",
        metavar="PATH",
        help="a LocalKms key file (master key from PATTERNS_KMS_MASTER_KEY or "
        "PATTERNS_KMS_PASSPHRASE); without it, Vault or AWS from their PATTERNS_* variables",
    )
    parser.add_argument("--audit", metavar="PATH", help="append every KMS call to this audit log")


def kms_from_arguments(args: argparse.Namespace) -> Kms:
    """The KMS the options and environment name, wrapped in an audit log if asked."""
    from patterns.kms import AuditedKms, AuditLog, LocalKms

    kms: Kms | None
    if args.kms_file:
        raw = os.environ.get("PATTERNS_KMS_MASTER_KEY", "").strip()
        passphrase = os.environ.get("PATTERNS_KMS_PASSPHRASE", "")
        if raw:
            try:
                master = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            except (ValueError, binascii.Error):
                raise PatternError("PATTERNS_KMS_MASTER_KEY is not base64url") from None
            kms = LocalKms(args.kms_file, master_key=master)
        elif passphrase:
            kms = LocalKms.from_passphrase(args.kms_file, passphrase)
        else:
            raise PatternError(
                "set PATTERNS_KMS_MASTER_KEY or PATTERNS_KMS_PASSPHRASE for --kms-file"
            )
    else:
        from patterns.kms.environment import aws_from_environment, vault_from_environment

        kms = vault_from_environment() or aws_from_environment()
        if kms is None:
            raise PatternError(
                "no KMS configured: pass --kms-file, or set PATTERNS_VAULT_ADDR and "
                "PATTERNS_VAULT_TOKEN, or PATTERNS_AWS_KMS_REGION"
            )
    if args.audit:
        kms = AuditedKms(kms, AuditLog(args.audit), actor="patterns-cli")
    return kms


# -- commands ---------------------------------------------------------------------------------


def _key_age(args: argparse.Namespace) -> int:
    inventory = KeyInventory(args.inventory)
    if args.track:
        key = key_from_environment(args.key_env)
        if key is None:
            raise PatternError(
                f"set {args.key_env} to the key to track (only its fingerprint is kept)"
            )
        entry = inventory.track(args.track, key)
        print(f"tracking {entry.name} ({entry.fingerprint})")
    if args.forget:
        print(f"{args.forget}: {'forgotten' if inventory.forget(args.forget) else 'not tracked'}")
    webhook = args.webhook or os.environ.get(WEBHOOK_VARIABLE, "").strip()
    notify = webhook_notifier(webhook) if webhook else None
    reminders = check_key_ages(
        inventory.tracked(), max_age_days=args.max_age_days, warn_days=args.warn_days
    )
    for reminder in reminders:
        print(reminder)
    overdue = sum(r.overdue for r in reminders)
    print(f"key-age: {len(inventory.tracked())} key(s) tracked, {overdue} overdue", file=sys.stderr)
    if notify is not None:  # after printing: a webhook outage must not hide the reminders
        try:
            for reminder in reminders:
                notify(reminder)
        except PatternError as error:
            print(f"key-age: {error}", file=sys.stderr)
            return 3
    return 1 if overdue else 0


def _rotate_kms(args: argparse.Namespace) -> int:
    from patterns.lifecycle.rotation import rewrap_store, rotate_and_rewrap
    from patterns.lifecycle.sealed import SealedDirectory

    kms, store = kms_from_arguments(args), SealedDirectory(args.secrets)
    report = (
        rewrap_store(kms, args.key_id, store)
        if args.rewrap_only
        else rotate_and_rewrap(kms, args.key_id, store)
    )
    for line in report.lines():
        print(line)
    return 0 if report.complete else 1


def _rotate_org_key(args: argparse.Namespace) -> int:
    from patterns.lifecycle.remote import reload_org_key, shown

    status = 0
    for proxy in args.proxy:  # every replica: each holds its own keyring; one down stops none
        try:
            result = reload_org_key(proxy, grace=args.grace, revoke_previous=False)
        except PatternError as error:  # report, and go on with the other replicas
            print(
                f"rotate-org-key: {shown(proxy)}: {error}; run this again for it", file=sys.stderr
            )
            status = 2
            continue
        for line in result["report"]:
            print(f"{shown(proxy)}: {line}")
    return status


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register the lifecycle commands on the top-level parser's subcommands."""
    clean = commands.add_parser(
        "clean-notebook",
        help="redact secrets and widget state from notebooks before sharing them",
        description="Redact every key-shaped string (code, outputs, metadata), drop saved "
        "widget state and widget views, and with --strip-outputs clear all outputs. Files "
        "are rewritten atomically and only when something changes. Exit status: 0 done, "
        "1 --check found work, 2 a file is not a readable notebook.",
    )
    add_clean_arguments(clean)
    clean.set_defaults(handler=run_clean)

    age = commands.add_parser(
        "key-age",
        help="remind when a tracked key passes its rotation age",
        description="Track keys by name and fingerprint (never the key) in a JSON inventory "
        "and list those past --max-age-days (exit 1) or within --warn-days of it.",
    )
    age.add_argument("--inventory", required=True, metavar="PATH", help="the inventory JSON file")
    age.add_argument("--max-age-days", type=float, default=DEFAULT_MAX_AGE_DAYS)
    age.add_argument("--warn-days", type=float, default=14.0)
    age.add_argument("--track", metavar="NAME", help="add (or refresh) a key read from --key-env")
    age.add_argument("--key-env", default="ANTHROPIC_API_KEY", metavar="VARIABLE")
    age.add_argument("--forget", metavar="NAME", help="stop tracking a key")
    age.add_argument(
        "--webhook",
        metavar="URL",
        help=f"POST each reminder as JSON to this URL (prefer ${WEBHOOK_VARIABLE}: a chat "
        "webhook URL is a credential, and a command line is visible to other users)",
    )
    age.set_defaults(handler=_guarded(_key_age, "key-age"))

    rotate = commands.add_parser(
        "rotate-kms",
        help="rotate a customer key, then rewrap every stored secret",
        description="Rotate --key-id, then rewrap every sealed secret in --secrets to the new "
        "version inside the KMS. --rewrap-only finishes an interrupted run. Exit status 1 "
        "if some secrets could not be rewrapped (they are named).",
    )
    _add_kms_arguments(rotate)
    rotate.add_argument("--rewrap-only", action="store_true", help="do not rotate first")
    rotate.set_defaults(handler=_guarded(_rotate_kms, "rotate-kms"))

    org = commands.add_parser(
        "rotate-org-key",
        help="roll a running token proxy over to the key now in its key file",
        description="Ask the proxy (serve token-proxy --key-file) to re-read its key file: "
        "new tokens use the new key at once, older tokens after --grace seconds.",
    )
    org.add_argument(
        "--proxy", required=True, action="append", metavar="URL", help="each proxy replica"
    )
    org.add_argument("--grace", type=float, default=900.0, help="seconds (default 900)")
    org.set_defaults(handler=_guarded(_rotate_org_key, "rotate-org-key"))
    from patterns.lifecycle.incident_cli import add_incident  # its own module, loaded here

    add_incident(commands)
