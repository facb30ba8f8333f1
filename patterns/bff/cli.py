"""``python -m patterns serve bff``: the backend-for-frontend in the foreground.

    python -m patterns serve bff --upstream http://127.0.0.1:8420 --user alice:some-password \\
        [--redis redis://127.0.0.1:6379/0] [--kms-file bff-keys.json]

Users come from ``--user NAME:PASSWORD`` (repeatable) and from ``PATTERNS_BFF_USERS``
(comma-separated ``NAME:PASSWORD``); prefer the variable, since a command line is visible to
every user of the machine. Passwords are hashed with Argon2id at start-up and never printed.

Keys are sealed with a LocalKms: an ephemeral one by default (keys are lost at exit), or the
file given by ``--kms-file`` with its passphrase in ``PATTERNS_BFF_KMS_PASSPHRASE``. Several
processes behind one load balancer share ``--redis`` (sessions, limits, sealed keys, usage)
and the same KMS file or a real KMS.

``--audit-log PATH`` appends the audit events to a file as JSON lines (owner-readable only),
the input of ``python -m patterns monitor``. ``--alert-webhook-env VAR`` posts this process's
anomaly alerts to the webhook URL held in the environment variable ``VAR`` (the URL carries
its secret: never on the command line, and only its host is printed), from a background
thread that never delays a request. Each replica alerts on its own share of a user's
traffic; run ``monitor`` over the shipped audit logs for one alert stream across replicas.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Final

from patterns.audit import add_audit_log_argument, attach_audit_log
from patterns.bff.app import create_app
from patterns.bff.context import bff_of
from patterns.bff.monitoring import attach_alert_hooks
from patterns.bff.passwords import UserDirectory
from patterns.bff.redis_stores import redis_stores
from patterns.bff.settings import BffSettings, RateLimit
from patterns.bff.stores import memory_stores
from patterns.bff.vault import KEY_NAME, ephemeral_kms
from patterns.errors import KmsError, PatternError
from patterns.kms import LocalKms
from patterns.lifecycle.monitoring.hooks import WebhookHook
from patterns.models import CATALOG, default_model
from patterns.serving import run_in_foreground

__all__ = ["DEFAULT_PORT", "PASSPHRASE_VARIABLE", "USERS_VARIABLE", "add_arguments", "run"]

DEFAULT_PORT: Final = 8440
USERS_VARIABLE: Final = "PATTERNS_BFF_USERS"
PASSPHRASE_VARIABLE: Final = "PATTERNS_BFF_KMS_PASSPHRASE"  # noqa: S105 (a variable name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``serve bff``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 picks one)")
    parser.add_argument(
        "--upstream",
        default="http://127.0.0.1:8420",
        metavar="URL",
        help="the Messages API to forward to (default: the local stand-in)",
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help=f"a user who may sign in (repeatable; or ${USERS_VARIABLE})",
    )
    parser.add_argument("--redis", metavar="URL", help="keep sessions, limits and keys in Redis")
    parser.add_argument(
        "--kms-file",
        metavar="PATH",
        help=f"LocalKms key file shared by replicas (passphrase in ${PASSPHRASE_VARIABLE})",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID",
        help="a model users may call (repeatable; default: the suite's default model)",
    )
    parser.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN")
    parser.add_argument(
        "--requests-per-minute", type=float, default=30.0, help="per-user rate (default 30)"
    )
    parser.add_argument("--burst", type=int, default=10, help="per-user burst (default 10)")
    add_audit_log_argument(parser)
    parser.add_argument(
        "--alert-webhook-env",
        metavar="VAR",
        help="post anomaly alerts to the webhook URL in this environment variable",
    )
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))


def _alert_hook(variable: str | None) -> WebhookHook | None:
    if not variable:
        return None
    url = os.environ.get(variable, "").strip()
    if not url:
        raise PatternError(f"--alert-webhook-env: the environment variable {variable} is not set")
    return WebhookHook(url)


def _local_kms(path: str | None) -> tuple[LocalKms, str]:
    if path is None:
        return ephemeral_kms()
    passphrase = os.environ.get(PASSPHRASE_VARIABLE, "")
    if len(passphrase) < 16:
        raise PatternError(f"set {PASSPHRASE_VARIABLE} to a passphrase of 16+ characters")
    kms = LocalKms.from_passphrase(path, passphrase)
    try:
        kms.key_info(KEY_NAME)
    except KmsError:
        try:
            kms.create_key(KEY_NAME)
        except KmsError:  # another replica created it a moment ago
            kms.key_info(KEY_NAME)
    return kms, KEY_NAME


def run(args: argparse.Namespace) -> int:
    """Configure and serve; exit status 2 on a configuration error."""
    try:
        specs = list(args.user)
        specs += [s for s in os.environ.get(USERS_VARIABLE, "").split(",") if s.strip()]
        if not specs:
            raise PatternError(f"give at least one --user NAME:PASSWORD (or ${USERS_VARIABLE})")
        users = UserDirectory.from_specs(specs)
        known = {entry.id for entry in CATALOG}
        for model in args.model:
            if model not in known:
                raise PatternError(f"--model {model!r} is not in the model catalog")
        settings = BffSettings(
            upstream_url=args.upstream,
            allowed_models=tuple(args.model) or (default_model(),),
            allowed_origins=tuple(args.allowed_origin),
            message_limit=RateLimit(args.requests_per_minute, args.burst),
        )
        if args.redis:
            stores = redis_stores(
                args.redis,
                idle_timeout=settings.idle_timeout,
                absolute_timeout=settings.absolute_timeout,
            )
        else:
            stores = memory_stores(settings.idle_timeout, settings.absolute_timeout)
        kms, key_id = _local_kms(args.kms_file)
        hook = _alert_hook(args.alert_webhook_env)
    except PatternError as error:
        print(f"serve bff: {error}", file=sys.stderr)
        return 2
    names = ", ".join(sorted(spec.split(":")[0] for spec in specs))
    sealer = f"LocalKms {args.kms_file}" if args.kms_file else "an ephemeral LocalKms"
    banner = [
        f"forwarding to {args.upstream}; users: {names}",
        f"stores: {'Redis' if args.redis else 'memory (this process only)'}; "
        f"keys sealed by {sealer}",
        f"models: {', '.join(settings.allowed_models)}",
    ]
    app = create_app(settings, users=users, stores=stores, kms=kms, kms_key_id=key_id)
    dispatcher = None
    try:
        audit_file = attach_audit_log(bff_of(app).audit, args.audit_log, banner)
    except PatternError as error:
        print(f"serve bff: {error}", file=sys.stderr)
        return 2
    if hook is not None:
        dispatcher = attach_alert_hooks(app, [hook])
        banner.append(f"anomaly alerts: posted to {hook.target}")
    try:
        return run_in_foreground(
            app,
            name="Backend-for-frontend",
            host=args.host,
            port=args.port,
            banner=banner,
            log_level=args.log_level,
        )
    finally:
        if dispatcher is not None:
            dispatcher.close(timeout=5.0)
        if audit_file is not None:
            audit_file.close()
