"""``python -m patterns serve upstream``: run the stand-in in the foreground.

Keys come from ``--api-key`` (repeatable), else ``$PATTERNS_UPSTREAM_KEYS`` (comma
separated), else the demo key ``demo_key("upstream")``. Only fingerprints are printed. Prefer
the environment variable to ``--api-key``: a command line is visible to every user of the
machine (``ps``), an environment is not.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn

from patterns.errors import PatternError
from patterns.serving import log_config
from patterns.upstream.app import create_app
from patterns.upstream.settings import (
    KEYS_ENVIRONMENT_VARIABLE,
    RateLimits,
    UpstreamSettings,
    keys_from_environment,
)

__all__ = ["DEFAULT_PORT", "add_arguments", "run"]

DEFAULT_PORT = 8420
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``serve upstream``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0 picks one)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"accept this key (repeatable; prefer ${KEYS_ENVIRONMENT_VARIABLE}, since a "
        "command line is visible in the process list)",
    )
    parser.add_argument(
        "--admin", action="store_true", help="enable /_stand-in/ fault and log routes"
    )
    parser.add_argument(
        "--stream-delay", type=float, default=0.0, metavar="SECONDS", help="pause per delta"
    )
    limits = RateLimits()
    parser.add_argument("--requests-per-minute", type=int, default=limits.requests_per_minute)
    parser.add_argument(
        "--input-tokens-per-minute", type=int, default=limits.input_tokens_per_minute
    )
    parser.add_argument(
        "--output-tokens-per-minute", type=int, default=limits.output_tokens_per_minute
    )
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))


def run(args: argparse.Namespace) -> int:
    """Start the stand-in and serve until interrupted; exit status 2 on bad settings."""
    try:
        settings = UpstreamSettings(
            api_keys=keys_from_environment(args.api_key),
            limits=RateLimits(
                args.requests_per_minute,
                args.input_tokens_per_minute,
                args.output_tokens_per_minute,
            ),
            stream_delay=args.stream_delay,
            admin_enabled=args.admin,
        )
    except PatternError as error:
        print(f"serve upstream: {error}", file=sys.stderr)
        return 2
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        sock.close()
        print(
            f"serve upstream: cannot listen on {args.host}:{args.port} ({error.strerror}); "
            "pass --port 0 for a free port",
            file=sys.stderr,
        )
        return 2
    # Listen before announcing the URL: a client that reads the banner and connects at once
    # waits in the backlog until uvicorn accepts, instead of being refused.
    sock.listen(128)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.host not in _LOOPBACK:
        print("warning: listening beyond loopback; the stand-in is for local use", flush=True)
    shown = ", ".join(key.fingerprint for key in settings.accepted_keys)
    source = "given" if settings.api_keys else 'demo key demo_key("upstream")'
    print(f"Anthropic API stand-in on http://{host}:{port}", flush=True)
    print(f"accepting {len(settings.accepted_keys)} key(s) ({source}): {shown}", flush=True)
    config = uvicorn.Config(
        create_app(settings),
        log_level=args.log_level,
        log_config=log_config(args.log_level),
        access_log=args.log_level != "warning",
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
