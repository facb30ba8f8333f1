"""Monitoring from the audit logs: per-user usage over time, anomaly alerts, pager hooks.

* :mod:`.logs`: read the BFF's and the token proxy's JSON-lines audit logs (files or
  in-memory lists, mixed), counting malformed lines without echoing them.
* :mod:`.usage`: calls and tokens per user per minute, and :func:`replay_alerts`, the BFF's
  own anomaly rule run over every replica's log at once (one alert stream).
* :mod:`.hooks`: :class:`CallableHook`, :class:`WebhookHook`, and :class:`AlertDispatcher`,
  which runs them off the request path with a bounded queue.
* :mod:`.plot`: matplotlib figures with the alerts marked (imports matplotlib when called).
* :mod:`.cli`: ``python -m patterns monitor LOG...``.
"""

from patterns.lifecycle.monitoring.hooks import (
    AlertDeliveryError,
    AlertDispatcher,
    AlertHook,
    CallableHook,
    DispatchStats,
    WebhookHook,
    deliver,
)
from patterns.lifecycle.monitoring.logs import EventLog, SourceSummary, read_events
from patterns.lifecycle.monitoring.plot import plot_usage
from patterns.lifecycle.monitoring.usage import (
    Alert,
    Usage,
    UserUsage,
    replay_alerts,
    usage_by_minute,
)

__all__ = [
    "Alert",
    "AlertDeliveryError",
    "AlertDispatcher",
    "AlertHook",
    "CallableHook",
    "DispatchStats",
    "EventLog",
    "SourceSummary",
    "Usage",
    "UserUsage",
    "WebhookHook",
    "deliver",
    "plot_usage",
    "read_events",
    "replay_alerts",
    "usage_by_minute",
]
