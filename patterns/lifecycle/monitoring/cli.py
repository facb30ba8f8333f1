"""``python -m patterns monitor LOG...``: usage per user and anomaly alerts from audit logs.

    python -m patterns monitor bff-*.log proxy.log [--plot usage.png] [--factor 5]
        [--webhook-env PAGER_WEBHOOK_URL]

Reads the BFF's and the token proxy's JSON-lines audit logs (several replicas' files at
once; ``-`` for stdin), prints each user's calls and tokens, replays the BFF's anomaly rule
over all of them together and prints the alerts. ``--plot`` saves the figure;
``--webhook-env VAR`` posts each alert to the URL in the environment variable ``VAR`` (a
URL carries its secret, so never on the command line; only its host is ever printed).

Exit status: 0 no alert, 1 alerts raised (a cron job or CI step can page on it), 2 usage
error (unreadable file, bad option, webhook URL missing or plain http to a remote host),
3 alerts raised and at least one webhook delivery failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from patterns.errors import PatternError

if TYPE_CHECKING:
    from patterns.lifecycle.monitoring.usage import Usage

__all__ = ["add_command", "run"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``monitor`` on the top-level parser."""
    parser = commands.add_parser(
        "monitor",
        help="per-user usage and anomaly alerts from BFF and token proxy audit logs",
        description="Read the BFF's and the token proxy's JSON-lines audit logs (several "
        "replicas' files at once), print each user's calls and tokens, replay the BFF's "
        "anomaly rule over all of them together and print the alerts. The webhook URL comes "
        "from an environment variable, never the command line. Exit status: 0 no alert, "
        "1 alerts raised, 2 usage error, 3 alerts raised and a webhook delivery failed.",
    )
    parser.add_argument("logs", nargs="+", metavar="LOG", help="JSON-lines audit log (- for stdin)")
    parser.add_argument("--plot", metavar="PATH.png", help="save usage over time with alerts")
    parser.add_argument(
        "--webhook-env",
        metavar="VAR",
        help="post each alert to the webhook URL held in this environment variable",
    )
    parser.add_argument(
        "--factor", type=float, default=5.0, metavar="F", help="alert at F x baseline (5)"
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=20,
        metavar="N",
        help="and at least N calls a minute (20)",
    )
    parser.add_argument(
        "--min-tokens", type=int, default=20_000, metavar="N", help="or N tokens a minute (20000)"
    )
    parser.set_defaults(handler=run)


def _table(usage: Usage) -> list[str]:
    from patterns.lifecycle.monitoring.usage import utc_minute

    if not usage.users:
        return ["no calls in these logs"]
    width = max(4, *(len(user) for user in usage.users))
    lines = [f"{'user':<{width}}  {'calls':>7}  {'tokens':>9}  busiest minute"]
    for user, series in usage.users.items():
        start, calls = usage.busiest(user)
        lines.append(
            f"{user:<{width}}  {series.total_requests:>7}  {series.total_tokens:>9}  "
            f"{calls} calls at {utc_minute(start)}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    """Read, report, plot, notify; see the module docstring for the exit status."""
    # Imported here: the command's registration must not load FastAPI (via the BFF's
    # anomaly rule) or httpx for every other command of ``python -m patterns``.
    from patterns.lifecycle.monitoring.hooks import WebhookHook, deliver
    from patterns.lifecycle.monitoring.logs import read_events
    from patterns.lifecycle.monitoring.plot import plot_usage
    from patterns.lifecycle.monitoring.usage import replay_alerts, usage_by_minute

    try:
        if args.factor <= 1 or args.min_requests < 1 or args.min_tokens < 1:
            raise PatternError("--factor must be above 1, the minimums at least 1")
        hook = None
        if args.webhook_env:
            url = os.environ.get(args.webhook_env, "").strip()
            if not url:
                raise PatternError(f"the environment variable {args.webhook_env} is not set")
            hook = WebhookHook(url)
        log = read_events(*args.logs)
    except PatternError as error:
        print(f"monitor: {error}", file=sys.stderr)
        return 2
    usage = usage_by_minute(log.events)
    alerts = replay_alerts(
        log.events,
        factor=args.factor,
        min_requests=args.min_requests,
        min_tokens=args.min_tokens,
    )
    for source in log.sources:
        print(source.describe())
    if log.untimed:
        print(f"{log.untimed} event(s) without a time were left out of the figures")
    print()
    print("\n".join(_table(usage)))
    print()
    print(f"alerts: {len(alerts)}")
    for alert in alerts:
        ids = ", ".join(alert.request_ids)
        print(f"  {alert.summary()}" + (f"; latest requests: {ids}" if ids else ""))
    if args.plot:
        figure = plot_usage(usage, alerts)
        figure.savefig(args.plot, dpi=100, metadata={"Software": None})
        print(f"figure saved to {args.plot}")
    if hook is None or not alerts:
        return 1 if alerts else 0
    failures = deliver(alerts, [hook])
    for failure in failures:
        print(f"webhook: {failure}", file=sys.stderr)
    print(f"sent {len(alerts) - len(failures)} of {len(alerts)} alert(s) to {hook.target}")
    return 3 if failures else 1
