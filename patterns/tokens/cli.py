"""``python -m patterns serve token-proxy``: the temporary-token proxy in the foreground.

Secrets come from the environment only (a command line is visible to every user of the
machine): ``ANTHROPIC_API_KEY`` (or ``--key-file``) is the organisation key the proxy forwards
with, and ``PATTERNS_TOKEN_ISSUER_SECRET`` guards ``POST /tokens``. Only fingerprints are
printed. With ``--key-file``, replace the file's content and call ``POST /admin/org-key/reload``
(``python -m patterns rotate-org-key``) to roll the key over without a restart.
"""

from __future__ import annotations

import argparse
import os
import sys

from patterns.audit import add_audit_log_argument, attach_audit_log
from patterns.errors import PatternError
from patterns.keys import ApiKey, demo_key, key_from_environment
from patterns.serving import run_in_foreground
from patterns.tokens.keyring import Keyring, key_file_source
from patterns.tokens.memory import MemoryTokenStore
from patterns.tokens.proxy import ProxySettings, create_app
from patterns.tokens.redis_store import RedisTokenStore
from patterns.tokens.service import TokenService

__all__ = ["DEFAULT_PORT", "ISSUER_VARIABLE", "add_arguments", "run"]

DEFAULT_PORT = 8430
ISSUER_VARIABLE = "PATTERNS_TOKEN_ISSUER_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``serve token-proxy``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 picks one)")
    parser.add_argument(
        "--upstream",
        default="http://127.0.0.1:8420",
        metavar="URL",
        help="the Messages API to forward to (default: the local stand-in)",
    )
    parser.add_argument("--redis", metavar="URL", help="share tokens through Redis")
    parser.add_argument("--ttl", type=float, default=900.0, help="default token lifetime (s)")
    parser.add_argument("--max-uses", type=int, default=100, help="default uses per token")
    parser.add_argument(
        "--use-demo-key",
        action="store_true",
        help='forward with demo_key("upstream"), the key the local stand-in accepts',
    )
    parser.add_argument(
        "--key-file",
        metavar="PATH",
        help="read the organisation key from this file (chmod 600) instead of "
        "ANTHROPIC_API_KEY; POST /admin/org-key/reload re-reads it: a rollover without restart",
    )
    parser.add_argument(
        "--key-name", default="org", help="prefix of the key versions' refs (org-<fingerprint>)"
    )
    add_audit_log_argument(parser)
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))


def run(args: argparse.Namespace) -> int:
    """Configure from the environment and serve; exit status 2 on a configuration error."""
    try:
        source = key_file_source(args.key_file) if args.key_file else None
        if source is not None:
            key: ApiKey | None = source()
        else:
            key = demo_key("upstream") if args.use_demo_key else key_from_environment()
        if key is None:
            raise PatternError(
                "set ANTHROPIC_API_KEY to the key the proxy forwards with, or pass "
                "--use-demo-key against the local stand-in"
            )
        issuer = os.environ.get(ISSUER_VARIABLE, "").strip()
        if not issuer:
            raise PatternError(f"set {ISSUER_VARIABLE} to a random secret of 32+ characters")
        store: RedisTokenStore | MemoryTokenStore = (
            RedisTokenStore.from_url(args.redis) if args.redis else MemoryTokenStore()
        )
        if isinstance(store, RedisTokenStore):
            # Revocations must survive in Redis: any eviction policy but noeviction is refused
            # (exit 2), missing persistence or an unreadable CONFIG is a warning.
            for warning in store.check_durability():
                print(f"serve token-proxy: warning: {warning}", file=sys.stderr)
        # The store is also where replicas share known and revoked key refs: a replica
        # started after a leak refuses the old tokens, and refuses to start with the leaked
        # key (ConfigurationError). Redis down at start: StoreUnavailable, exit 2.
        keyring = Keyring(key, name=args.key_name, source=source, registry=store)
        settings = ProxySettings(
            upstream_url=args.upstream, api_keys=keyring, issuer_secret=ApiKey(issuer)
        )
        service = TokenService(store, ttl=args.ttl, max_uses=args.max_uses)
        keyring.attach(service)
    except PatternError as error:
        print(f"serve token-proxy: {error}", file=sys.stderr)
        return 2
    banner = [
        f"forwarding to {args.upstream} with {key}",
        f"token store: {'Redis' if args.redis else 'memory (this process only)'}",
    ]
    app = create_app(service, settings)
    try:
        audit_file = attach_audit_log(app.state.audit, args.audit_log, banner)
    except PatternError as error:
        print(f"serve token-proxy: {error}", file=sys.stderr)
        return 2
    try:
        return run_in_foreground(
            app,
            name="Temporary-token proxy",
            host=args.host,
            port=args.port,
            banner=banner,
            log_level=args.log_level,
        )
    finally:
        if audit_file is not None:
            audit_file.close()
