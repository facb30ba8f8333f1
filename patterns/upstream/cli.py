"""``python -m patterns serve upstream``: run the stand-in in the foreground.

Keys come from ``--api-key`` (repeatable), else ``$PATTERNS_UPSTREAM_KEYS`` (comma
separated), else the demo key ``demo_key("upstream")``. Only fingerprints are printed. Prefer
the environment variable to ``--api-key``: a command line is visible to every user of the
machine (``ps``), an environment is not.
"""

from __future__ import annotations

import argparse
import sys

from patterns.errors import PatternError
from patterns.serving import run_in_foreground
from patterns.upstream.app import create_app
from patterns.upstream.settings import (
    KEYS_ENVIRONMENT_VARIABLE,
    RateLimits,
    UpstreamSettings,
    keys_from_environment,
)

__all__ = ["DEFAULT_PORT", "add_arguments", "run"]

DEFAULT_PORT = 8420


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
    shown = ", ".join(key.fingerprint for key in settings.accepted_keys)
    source = "given" if settings.api_keys else 'demo key demo_key("upstream")'
    return run_in_foreground(
        create_app(settings),
        name="Anthropic API stand-in",
        host=args.host,
        port=args.port,
        banner=[f"accepting {len(settings.accepted_keys)} key(s) ({source}): {shown}"],
        log_level=args.log_level,
    )
