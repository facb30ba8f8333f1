"""The incident drill for notebook 07: a stolen session spends alice's key through a real BFF,
the anomaly alert fires through a hook, the hook runs user-key-leaked on the BFF's stores, and
the attacker's next calls fail. Fast, offline and the same on every run."""

from __future__ import annotations

import io
import json
import time

from patterns.keys import demo_key
from patterns.lifecycle.drill import TimelineEntry, run_drill
from patterns.scanning import find_secrets


def test_the_leak_is_detected_contained_and_reported() -> None:
    started = time.perf_counter()
    steps: list[TimelineEntry] = []
    report = run_drill(on_step=steps.append)
    assert time.perf_counter() - started < 5.0
    assert steps == report.timeline
    assert [entry.event for entry in report.timeline] == [
        "sign-in",
        "steady",
        "leak",
        "attack",
        "alert",
        "response",
        "refused",
        "refused",
        "recovery",
    ]
    assert report.contained
    (alert,) = report.alerts
    assert (alert.user, alert.signal, alert.value, alert.baseline) == (
        "alice",
        "requests per minute",
        20,
        2.0,
    )
    assert len(alert.request_ids) == 5
    replayed = [(a.user, a.signal, a.value, a.at) for a in report.replayed]
    assert replayed == [(alert.user, alert.signal, alert.value, alert.at)]
    response = next(e for e in report.timeline if e.event == "response")
    attacks = [c for c in report.calls if c.actor == "attacker"]
    assert all(c.status == 200 for c in attacks if c.at <= response.at)
    assert [c.status for c in attacks if c.at > response.at] == [401, 401, 401]
    assert report.counts() == {
        "alice served": 14,
        "alice refused": 1,
        "attacker served": 19,
        "attacker refused": 3,
        "alerts (live)": 1,
        "alerts (replayed from the audit log)": 1,
    }
    assert report.detected_after == 19
    assert report.incident is not None
    assert [str(step) for step in report.incident.steps] == [
        "[nothing to do] revoke temporary tokens: no token store in this deployment",
        "[done] delete the stored key: 1 key(s)",
        "[done] end sessions: 1 session(s)",
    ]
    lines = report.lines()
    assert lines[0] == "00:00  sign-in   alice signs in and stores her key (sha256:3c60237a)"
    assert "05:37  alert     alice: 20 requests per minute against a baseline of 2" in lines[4]
    assert "user-key-leaked (user alice): contained" in lines


def test_the_drill_is_deterministic_and_shows_no_key() -> None:
    first, second = run_drill(), run_drill()
    assert first.lines() == second.lines()
    assert first.calls == second.calls
    text = "\n".join(first.lines()) + json.dumps(first.events)
    for label in ("drill-alice", "drill-alice-new"):
        assert demo_key(label).reveal() not in text
    assert find_secrets(text, include_fakes=True) == []
    assert [a.request_ids for a in first.alerts] == [a.request_ids for a in second.alerts]


def test_an_attacker_below_the_threshold_is_not_detected() -> None:
    report = run_drill(attack_calls=6, attack_interval=20.0)
    assert report.alerts == []
    assert report.incident is None
    assert not report.contained
    assert report.count("attacker", served=True) == 6
    assert "alert" not in [entry.event for entry in report.timeline]


def test_the_figure_shows_who_called_and_when_the_response_came() -> None:
    report = run_drill()
    figure = report.figure()
    (axes,) = figure.axes
    legend = axes.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "alice, served",
        "attacker, served",
        "refused",
    ]
    heights = [patch.get_height() for patch in axes.containers[1]]
    assert heights[5] == 19  # the attacker's served calls, all in minute 5
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
