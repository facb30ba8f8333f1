"""Figures of per-user usage over time with the alerts marked (matplotlib).

Built on :class:`matplotlib.figure.Figure` directly, not ``pyplot``, so nothing global is
touched and no window opens; the axis is in minutes from the log's first minute (named in the
label) and every value comes from the events, so the same log always draws the same figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from patterns.lifecycle.monitoring.usage import Alert, Usage, utc_minute

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["mark_alerts", "plot_usage"]


def plot_usage(
    usage: Usage,
    alerts: Sequence[Alert] = (),
    *,
    users: Sequence[str] | None = None,
    title: str = "Usage per user per minute",
) -> Figure:
    """Two panels, calls and tokens per minute, one line per user, alerts as red triangles
    on the panel of their signal."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    calls, tokens = figure.subplots(2, 1, sharex=True)
    shown = list(users) if users is not None else list(usage.users)
    minutes = list(range(usage.minutes))
    for user in shown:
        series = usage.users.get(user)
        if series is None:
            continue
        calls.step(minutes, series.requests, where="post", label=user)
        tokens.step(minutes, series.tokens, where="post", label=user)
    mark_alerts(usage, [a for a in alerts if a.user in shown], calls, tokens)
    calls.set_ylabel("calls / minute")
    tokens.set_ylabel("tokens / minute")
    start = utc_minute(usage.start) if usage.minutes else "no calls"
    tokens.set_xlabel(f"minutes since {start}")
    calls.set_title(title)
    for axes in (calls, tokens):
        axes.grid(alpha=0.3)
        axes.set_ylim(bottom=0)
    if shown:
        calls.legend(loc="upper left", fontsize="small")
    return figure


def mark_alerts(usage: Usage, alerts: Sequence[Alert], calls: Axes, tokens: Axes) -> None:
    """Draw each alert at its minute and value, on the calls or tokens panel."""
    labelled = False
    for alert in alerts:
        if alert.at is None:
            continue
        axes = tokens if alert.signal.startswith("tokens") else calls
        axes.plot(
            [usage.minute_of(alert.at)],
            [alert.value],
            marker="v",
            markersize=11,
            color="crimson",
            linestyle="none",
            label=None if labelled else "alert",
        )
        axes.annotate(
            alert.user,
            (usage.minute_of(alert.at), alert.value),
            textcoords="offset points",
            xytext=(6, 4),
            color="crimson",
            fontsize="small",
        )
        labelled = True
