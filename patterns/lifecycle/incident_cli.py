"""``python -m patterns incident SCENARIO``: the incident responses as commands.

``user-key-leaked`` (the token proxy over HTTP, the BFF's Redis stores), ``org-key-leaked``
(every token proxy replica) and ``kms-key-compromised`` (rotate, rewrap, retire). Each
imports what it needs when it runs, like the other lifecycle commands (see
:mod:`patterns.lifecycle.cli`), and prints a report whose exit status says whether the
response is complete: 0 contained, 1 not fully contained, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patterns.errors import PatternError
from patterns.lifecycle.cli import _add_kms_arguments, _guarded, kms_from_arguments

if TYPE_CHECKING:
    from patterns.lifecycle.incidents import IncidentReport, UserTokens

__all__ = ["add_incident", "print_report"]


def print_report(report: IncidentReport) -> int:
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _org_key_leaked(args: argparse.Namespace) -> int:
    from patterns.lifecycle.incidents import normalise_fingerprint
    from patterns.lifecycle.remote import org_key_leaked_remote, shown

    leaked = normalise_fingerprint(args.leaked)  # a usage error (exit 2) before any call
    status = 0
    for proxy in args.proxy:  # try every replica, name the ones that could not be reached
        try:
            status = max(status, print_report(org_key_leaked_remote(proxy, leaked=leaked)))
        except PatternError as error:
            print(f"org-key-leaked (proxy {shown(proxy)}): NOT fully contained\n  [failed] {error}")
            status = 1
    return status


def _user_key_leaked(args: argparse.Namespace) -> int:
    from patterns.kms import AuditLog
    from patterns.lifecycle.incidents import NOT_DEPLOYED, user_key_leaked

    audit = AuditLog(args.incident_audit) if args.incident_audit else None
    tokens: UserTokens | None = None
    if args.proxy:
        from patterns.lifecycle.remote import RemoteUserTokens

        tokens = RemoteUserTokens(args.proxy)
    elif args.no_token_proxy:
        tokens = NOT_DEPLOYED
    if not args.bff_redis:
        report = user_key_leaked(args.user, tokens=tokens, audit=audit, actor="patterns-cli")
        return _print_user_report(report, tokens)
    from anyio.from_thread import start_blocking_portal

    from patterns.bff.redis_stores import redis_stores
    from patterns.lifecycle.incidents import bff_user_stores
    from patterns.session_keys import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT

    # The BFF's own store classes and key layout, on one event loop for every call.
    stores = redis_stores(
        args.bff_redis,
        idle_timeout=DEFAULT_IDLE_TIMEOUT,
        absolute_timeout=DEFAULT_ABSOLUTE_TIMEOUT,
        namespace=args.bff_namespace,
    )
    with start_blocking_portal() as portal:
        try:
            keys, sessions = bff_user_stores(
                stores, portal=portal, scan_unindexed=args.scan_sessions
            )
            report = user_key_leaked(
                args.user,
                tokens=tokens,
                keys=keys,
                sessions=sessions,
                audit=audit,
                actor="patterns-cli",
            )
        finally:
            if stores.close is not None:
                close = stores.close
                portal.call(_await_close, close)
    status = _print_user_report(report, tokens)
    location = getattr(stores.sessions, "location", None)
    if location is not None:  # host, port, database, namespace: never the URL's password
        print(f"  checked: the BFF's {location()}")
    return status


def _print_user_report(report: IncidentReport, tokens: UserTokens | None) -> int:
    """The report, then which token proxy was asked (a wrong --proxy reads "not verified")."""
    status = print_report(report)
    shown = getattr(tokens, "shown", None)
    if shown is not None:
        print(f"  checked: the token proxy at {shown()}")
    return status


async def _await_close(close: Callable[[], object]) -> None:
    closing = close()
    if hasattr(closing, "__await__"):
        await closing


def _incident(args: argparse.Namespace) -> int:
    if args.scenario == "user-key-leaked":
        return _user_key_leaked(args)
    if args.scenario == "org-key-leaked":
        return _org_key_leaked(args)
    from patterns.kms import AuditLog
    from patterns.lifecycle.incidents import kms_key_compromised
    from patterns.lifecycle.sealed import SealedDirectory

    audit = AuditLog(args.incident_audit) if args.incident_audit else None
    kms, store = kms_from_arguments(args), SealedDirectory(args.secrets)
    report = kms_key_compromised(
        kms, args.key_id, store, compromised_version=args.version, audit=audit, actor="patterns-cli"
    )
    return print_report(report)


def add_incident(commands: argparse._SubParsersAction[Any]) -> None:
    incident = commands.add_parser(
        "incident",
        help="contain a leaked key (idempotent; reports each step)",
        description="Run one incident response. Each is safe to run again: it reports what "
        "it did, or that nothing was left to do. Exit status: 0 contained, 1 not fully "
        "contained (see the failed steps), 2 usage or configuration error.",
    )
    incident.add_argument(
        "--incident-audit", metavar="PATH", help="append a record of the response"
    )
    scenarios = incident.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    user = scenarios.add_parser(
        "user-key-leaked",
        help="revoke a user's tokens, delete their stored key, end their sessions",
        description="Revoke the user's temporary tokens at the token proxy (--proxy), delete "
        "their sealed key and end every session of theirs in the BFF's Redis (--bff-redis). "
        "A store not given is reported as skipped and the response as not fully contained; "
        "--no-token-proxy says this deployment has none.",
    )
    user.add_argument("user", help="the user id")
    proxy = user.add_mutually_exclusive_group()
    proxy.add_argument("--proxy", metavar="URL", help="the token proxy whose tokens to revoke")
    proxy.add_argument(
        "--no-token-proxy", action="store_true", help="this deployment has no token proxy"
    )
    user.add_argument(
        "--bff-redis",
        metavar="URL",
        help="the Redis of the BFF (serve bff --redis): its key and session stores",
    )
    user.add_argument(
        "--bff-namespace", default="bff", help="the BFF's Redis key namespace (default bff)"
    )
    user.add_argument(
        "--scan-sessions",
        action="store_true",
        help="also scan every session key for the user's sessions outside the per-user index "
        "(created before the index, or by a replica not yet upgraded): one pass over all "
        "sessions",
    )
    org = scenarios.add_parser(
        "org-key-leaked",
        help="roll the proxy's key over, revoke all tokens",
        description="Write the new key (created in the Console) to each proxy's key file, "
        "then run this: each proxy re-reads it with no grace and revokes every older "
        "version. Contained (exit 0) only where the current key is not --leaked and the "
        "leaked version is listed as revoked.",
    )
    org.add_argument(
        "--proxy", required=True, action="append", metavar="URL", help="each proxy replica"
    )
    org.add_argument(
        "--leaked",
        required=True,
        metavar="FINGERPRINT",
        help="the leaked key's fingerprint (sha256:1a2b3c4d): the response fails while a "
        "proxy still uses that key or does not list it as revoked",
    )
    kms = scenarios.add_parser("kms-key-compromised", help="rotate, rewrap, retire old versions")
    _add_kms_arguments(kms)
    kms.add_argument("--version", type=int, required=True, help="the compromised version")
    incident.set_defaults(handler=_guarded(_incident, "incident"))
