"""The incident drill of notebook 07: a leak, detected by an anomaly alert, contained by the
response, with a timeline.

:func:`run_drill` runs it for real, in this process and offline: the stand-in API and a BFF
(memory stores) on loopback, a simulated clock (:class:`~patterns.clock.FakeClock`) so that
minutes pass in milliseconds, demo keys and sequential request ids, so every run prints the
same report.

The story is the one the BFF's anomaly signal can see. Alice signs in, stores her key and
calls a couple of times a minute. Then her *session* leaks (her cookie and CSRF token, say in
a HAR file attached to a support ticket, or from malware on her laptop), and an attacker
spends her key through the BFF with it, a call every two seconds: the pace of the default
rate limit (30 a minute), far above her own baseline. The key itself never left the server, so the
attacker can only use it through the BFF, where every call is audited under her name, and
the per-user anomaly rule fires. (An attacker holding the raw key would call the API
directly: no BFF sees that traffic, only the Console's usage page does, which is why the
guide asks users to revoke a leaked key there.)

The alert goes through an :class:`~patterns.lifecycle.monitoring.AlertDispatcher`, off the
request path, to two hooks: a pager (recorded in the timeline) and the automated response,
:func:`~patterns.lifecycle.incidents.user_key_leaked` with the BFF's own key and session
stores. The drill waits for the hooks after each call, so the response lands before the
attacker's next call (two simulated seconds; in a deployment, however long the pager and the
responder take). The attacker's next calls get 401; so does Alice, who signs in again and
stores a new key, as the report's manual step asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from patterns.bff import (
    Argon2Parameters,
    BffSettings,
    RateLimit,
    UserDirectory,
    bff_of,
    create_app,
)
from patterns.bff.client import BffClient
from patterns.bff.monitoring import attach_alert_hooks
from patterns.clock import FakeClock
from patterns.keys import ApiKey, demo_key
from patterns.lifecycle.incidents import (
    NOT_DEPLOYED,
    IncidentReport,
    bff_user_stores,
    user_key_leaked,
)
from patterns.lifecycle.monitoring import Alert, AlertDispatcher, CallableHook, replay_alerts
from patterns.models import DEFAULT_MODEL
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from patterns.upstream.ids import SequentialIds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DrillCall", "DrillReport", "TimelineEntry", "run_drill"]

START: Final = 1_900_000_020.0  # a minute boundary, so simulated minutes are clock minutes
_USER: Final = "alice"
_PASSWORD: Final = "alice's long drill password"  # noqa: S105 - a demo account's password
_STEADY_OFFSETS: Final = (10.0, 40.0)  # Alice's calls within each minute
#: The BFF's rate limiter (the ``limits`` library) counts wall-clock time, not the drill's
#: simulated clock, and the drill plays half an hour in about a second: a limit no run of at
#: most 280 calls can reach, so the story (told in simulated time) is the same on every run.
_DRILL_MESSAGE_LIMIT: Final = RateLimit(per_minute=60_000, burst=1_000)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline: simulated seconds since the drill started."""

    at: float
    event: str
    detail: str

    def __str__(self) -> str:
        minutes, seconds = divmod(int(self.at), 60)
        return f"{minutes:02d}:{seconds:02d}  {self.event:<9} {self.detail}"


@dataclass(frozen=True, slots=True)
class DrillCall:
    """One call to ``POST /claude/messages`` and how the BFF answered."""

    at: float
    actor: str  # "alice" or "attacker"
    status: int


@dataclass(slots=True)
class DrillReport:
    """What happened: timeline, calls, alerts, the incident report, the BFF's audit events."""

    timeline: list[TimelineEntry]
    calls: list[DrillCall]
    alerts: list[Alert]
    replayed: list[Alert]
    incident: IncidentReport | None
    events: list[dict[str, Any]] = field(repr=False)

    def count(self, actor: str, served: bool) -> int:
        return sum(1 for c in self.calls if c.actor == actor and (c.status == 200) == served)

    @property
    def detected_after(self) -> int:
        """How many of the attacker's calls were served before the response."""
        return self.count("attacker", served=True)

    @property
    def contained(self) -> bool:
        """The response ran, contained the leak, and the attacker's last call failed."""
        attacks = [c for c in self.calls if c.actor == "attacker"]
        return (
            self.incident is not None
            and self.incident.ok
            and bool(attacks)
            and attacks[-1].status != 200
        )

    def counts(self) -> dict[str, int]:
        return {
            "alice served": self.count(_USER, served=True),
            "alice refused": self.count(_USER, served=False),
            "attacker served": self.count("attacker", served=True),
            "attacker refused": self.count("attacker", served=False),
            "alerts (live)": len(self.alerts),
            "alerts (replayed from the audit log)": len(self.replayed),
        }

    def lines(self) -> list[str]:
        """The timeline, the counts and the incident report, as text."""
        lines = [str(entry) for entry in self.timeline]
        lines.append("")
        lines += [f"{name}: {value}" for name, value in self.counts().items()]
        if self.incident is not None:
            lines.append("")
            lines += self.incident.lines()
        return lines

    def figure(self) -> Figure:
        """Calls per simulated minute by who made them, refusals, the alert and the response."""
        return _figure(self)


class _Drill:
    """The running parts and the record being written."""

    def __init__(
        self,
        clock: FakeClock,
        url: str,
        app: object,
        on_step: Callable[[TimelineEntry], None] | None,
    ) -> None:
        self.clock, self.url, self.app, self.on_step = clock, url, app, on_step
        self.dispatcher: AlertDispatcher | None = None
        self.timeline: list[TimelineEntry] = []
        self.calls: list[DrillCall] = []
        self.alerts: list[Alert] = []
        self.incident: IncidentReport | None = None

    def note(self, event: str, detail: str) -> None:
        entry = TimelineEntry(round(self.clock() - START, 3), event, detail)
        self.timeline.append(entry)
        if self.on_step is not None:
            self.on_step(entry)

    def wait_for_hooks(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.flush(10.0)

    def call(self, client: BffClient, actor: str) -> int:
        body = {
            "model": DEFAULT_MODEL,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "summarise my notes"}],
        }
        status = client.request("POST", "/claude/messages", json=body).status_code
        self.calls.append(DrillCall(round(self.clock() - START, 3), actor, status))
        return status

    # -- the hooks (run by the dispatcher's thread) ----------------------------------------------
    def page(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self.note(
            "alert",
            f"{alert.user}: {alert.value} {alert.signal} against a baseline of "
            f"{alert.baseline:g}; the pager hook fires",
        )

    def respond(self, alert: Alert) -> None:
        keys, sessions = bff_user_stores(bff_of(self.app).stores)
        self.incident = user_key_leaked(
            alert.user, tokens=NOT_DEPLOYED, keys=keys, sessions=sessions, actor="drill-hook"
        )
        state = "contained" if self.incident.ok else "NOT fully contained"
        done = "; ".join(f"{s.action}: {s.outcome}" for s in self.incident.steps)
        self.note("response", f"user-key-leaked ({state}): {done}")


def _schedule(
    steady_minutes: int, attack_calls: int, attack_interval: float, after_calls: int
) -> list[tuple[float, str]]:
    """(simulated offset, actor) of every call, in time order."""
    plan = [
        (60.0 * minute + offset, _USER)
        for minute in range(steady_minutes + 2)
        for offset in _STEADY_OFFSETS
    ]
    attack_start = 60.0 * steady_minutes + 1
    plan += [
        (attack_start + attack_interval * n, "attacker") for n in range(attack_calls + after_calls)
    ]
    return sorted(plan)


def run_drill(
    *,
    steady_minutes: int = 5,
    attack_calls: int = 30,
    attack_interval: float = 2.0,
    after_calls: int = 3,
    on_step: Callable[[TimelineEntry], None] | None = None,
) -> DrillReport:
    """Run the drill (about a second) and return its report; see the module docstring.

    ``steady_minutes`` of Alice's normal use (two calls a minute) come first; the attacker
    then makes up to ``attack_calls`` calls ``attack_interval`` seconds apart, and
    ``after_calls`` more to show they fail. ``on_step`` sees each timeline entry as it is
    written (for a live display)."""
    if not 3 <= steady_minutes <= 30 or not 1 <= attack_calls <= 200 or attack_interval <= 0:
        raise ValueError("need 3 <= steady_minutes <= 30, 1 <= attack_calls <= 200, interval > 0")
    if not 1 <= after_calls <= 20:
        raise ValueError("need 1 <= after_calls <= 20")
    clock = FakeClock(START)
    key, new_key = demo_key("drill-alice"), demo_key("drill-alice-new")
    limits = RateLimits(100_000, 10**8, 10**8)
    upstream = UpstreamSettings((key, new_key), limits=limits, clock=clock, ids=SequentialIds())
    users = UserDirectory(Argon2Parameters(memory_kib=8 * 1024, iterations=1))
    users.add(_USER, _PASSWORD)
    with BackgroundServer(create_upstream(upstream)) as api:
        settings = BffSettings(
            upstream_url=api.url,
            clock=clock,
            ids=SequentialIds("drill-bff"),
            message_limit=_DRILL_MESSAGE_LIMIT,
        )
        app = create_app(settings, users=users)
        with BackgroundServer(app) as server:
            drill = _Drill(clock, server.url, app, on_step)
            hooks = [CallableHook(drill.page, "pager"), CallableHook(drill.respond, "respond")]
            drill.dispatcher = attach_alert_hooks(app, hooks)
            try:
                plan = _schedule(steady_minutes, attack_calls, attack_interval, after_calls)
                budget = (attack_calls, after_calls)
                _play(drill, plan, (key, new_key), attack_interval, budget)
            finally:
                drill.dispatcher.close()
            events = bff_of(app).audit.events()
    replayed = replay_alerts(events)
    return DrillReport(drill.timeline, drill.calls, drill.alerts, replayed, drill.incident, events)


def _play(
    drill: _Drill,
    plan: list[tuple[float, str]],
    keys: tuple[ApiKey, ApiKey],
    interval: float,
    budget: tuple[int, int],
) -> None:
    """Play ``plan``; the attacker stops after ``budget`` = (calls served, calls refused)."""
    key, new_key = keys
    alice = BffClient(drill.url).login(_USER, _PASSWORD)
    alice.store_key(key)
    drill.note("sign-in", f"alice signs in and stores her key ({key.fingerprint})")
    drill.note("steady", "alice calls twice a minute: her baseline")
    thief: BffClient | None = None
    served = refusals = 0
    recovered = False
    for offset, actor in plan:
        drill.clock.advance_to(START + offset)
        if actor == "attacker":
            if served >= budget[0] or refusals >= budget[1]:
                continue  # the attacker is done, or gives up
            if thief is None:
                thief = BffClient(drill.url)
                thief.session_id, thief.csrf_token = alice.session_id, alice.csrf_token
                drill.note("leak", "alice's session cookie and CSRF token are stolen")
                drill.note(
                    "attack", f"the attacker calls through the BFF as alice every {interval:g} s"
                )
            status = drill.call(thief, "attacker")
            served += int(status == 200)
            if status != 200:
                refusals += 1
                if refusals == 1:
                    drill.note(
                        "refused", f"the attacker's next call gets {status}: the session is over"
                    )
        elif drill.call(alice, _USER) == 401 and not recovered:
            recovered = True
            drill.note("refused", "alice's own session was ended too (401)")
            alice = BffClient(drill.url).login(_USER, _PASSWORD)
            alice.store_key(new_key)
            drill.note(
                "recovery",
                f"alice signs in again and stores a new key ({new_key.fingerprint}) after "
                "revoking the old one in the Console",
            )
            drill.call(alice, _USER)
        drill.wait_for_hooks()


def _figure(report: DrillReport) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.2), layout="constrained")
    axes = figure.subplots()
    minutes = int(max((c.at for c in report.calls), default=0) // 60) + 1
    stacks = {
        "alice, served": [0] * minutes,
        "attacker, served": [0] * minutes,
        "refused": [0] * minutes,
    }
    for c in report.calls:
        name = "refused" if c.status != 200 else f"{c.actor}, served"
        stacks[name][int(c.at // 60)] += 1
    bottom = [0] * minutes
    colours = {"alice, served": "tab:blue", "attacker, served": "tab:orange", "refused": "0.6"}
    for name, counts in stacks.items():
        axes.bar(
            range(minutes),
            counts,
            bottom=bottom,
            label=name,
            color=colours[name],
            align="edge",
            width=0.9,
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    for entry in report.timeline:
        if entry.event in {"alert", "response"}:
            axes.axvline(entry.at / 60, color="crimson", linestyle="--", linewidth=1)
    alert = next((e for e in report.timeline if e.event == "alert"), None)
    if alert is not None:
        axes.annotate(
            "alert + response",
            (alert.at / 60, max(bottom)),
            color="crimson",
            fontsize="small",
            xytext=(4, -12),
            textcoords="offset points",
        )
    axes.set_xlabel("simulated minutes")
    axes.set_ylabel("calls to /claude/messages")
    axes.set_title("Incident drill: alice's usage, the attack, the alert and the response")
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    return figure
