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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives: the package imports a submodule only when a name is used,
#: so ``python -m patterns`` can register ``monitor`` without loading FastAPI or matplotlib.
_HOMES = {
    "hooks": (
        "AlertDeliveryError",
        "AlertDispatcher",
        "AlertHook",
        "CallableHook",
        "DispatchStats",
        "WebhookHook",
        "deliver",
    ),
    "logs": ("EventLog", "SourceSummary", "read_events"),
    "plot": ("plot_usage",),
    "usage": ("Alert", "Usage", "UserUsage", "replay_alerts", "usage_by_minute"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
