"""Monitoring from audit logs: reading mixed sources (malformed lines counted, never echoed),
per-user usage per minute, the BFF's anomaly rule replayed over several replicas' logs as one
alert stream, and deterministic figures."""

from __future__ import annotations

import hashlib
import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from patterns.audit import AuditFile, AuditTrail
from patterns.bff.monitoring import AnomalyDetector
from patterns.errors import ConfigurationError
from patterns.keys import canary_key
from patterns.lifecycle.monitoring import (
    Alert,
    plot_usage,
    read_events,
    replay_alerts,
    usage_by_minute,
)

START = 1_900_000_040.0  # 20 s into a minute


def call(user: str, at: float, tokens: int = 30, rid: str | None = None) -> dict[str, Any]:
    return {
        "event": "message",
        "at": at,
        "user": user,
        "key_fingerprint": "sha256:0123abcd",
        "model": "claude-haiku-4-5",
        "input_tokens": tokens // 3,
        "output_tokens": tokens - tokens // 3,
        "status": 200,
        "request_id": rid or f"req_{user}_{at:.0f}",
    }


def steady_then_burst(user: str = "alice") -> list[dict[str, Any]]:
    """Two calls a minute for five minutes, then 30 in the sixth."""
    events = [call(user, START + 60 * m + 10 * i) for m in range(5) for i in range(2)]
    events += [call(user, START + 300 + i) for i in range(30)]
    return events


def write_lines(path: Path, events: list[dict[str, Any]], prefix: str = "") -> None:
    path.write_text("".join(f"{prefix}{json.dumps(e)}\n" for e in events), encoding="utf-8")


def test_mixed_sources_merge_in_time_order_and_bad_lines_are_counted_not_shown(
    tmp_path: Path,
) -> None:
    secret = canary_key().reveal()
    log = tmp_path / "bff-1.log"
    write_lines(log, [call("alice", START + 5)], prefix="INFO patterns.bff.audit ")
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"Traceback: something with {secret}\n\n")
        stream.write('{"event": "message", "at": \n')
        stream.write("[1, 2, 3]\n")
        stream.write('{"no_event": 1}\n')
        stream.write(json.dumps(call("bob", START + 1)) + "\n")
    trail = AuditTrail(clock=lambda: START + 3, logger=None)
    trail.record("message", user="carol", input_tokens=1, output_tokens=1)
    memory = [{"event": "login", "user": "dave"}, "not an event"]
    events = read_events(log, trail, memory)  # type: ignore[arg-type]
    assert [e.get("user") for e in events.events] == ["bob", "carol", "alice", "dave"]
    assert events.malformed == 5
    assert events.untimed == 1
    described = [s.describe() for s in events.sources]
    assert described[0] == f"{log}: 2 events, 4 malformed line(s) skipped (line 2, 4, 5, 6)"
    assert described[2] == "<events 3>: 1 events, 1 malformed line(s) skipped (line 2)"
    assert secret not in "\n".join(described) + repr(events.sources)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_events(tmp_path / "missing.log")


def test_usage_per_user_per_minute_spans_the_log_with_zeros(tmp_path: Path) -> None:
    events = [call("alice", START), call("alice", START + 45), call("bob", START + 185, 90)]
    events.append({"event": "login", "at": START, "user": "bob"})  # not a call
    usage = usage_by_minute(read_events(events).events)
    assert usage.start == START - 20
    assert usage.minutes == 4
    assert usage.users["alice"].requests == (1, 1, 0, 0)
    assert usage.users["bob"].requests == (0, 0, 0, 1)
    assert usage.users["bob"].tokens == (0, 0, 0, 90)
    assert usage.users["alice"].total_tokens == 60
    assert usage.busiest("alice") == (START - 20, 1)
    assert usage_by_minute([]).users == {}
    month = usage_by_minute([call("alice", START), call("alice", START + 30 * 86_400, 6)])
    assert month.minutes == 30 * 1440 + 1
    assert month.users["alice"].buckets == {0: (1, 10, 20), 30 * 1440: (1, 2, 4)}
    assert month.users["alice"].total_tokens == 36


def test_replay_is_the_bff_rule_and_matches_a_live_detector() -> None:
    events = steady_then_burst()
    alerts = replay_alerts(events)
    live = AuditTrail(logger=None)
    detector = AnomalyDetector(live)
    for event in events:
        detector.observe(event["user"], event["at"], event["input_tokens"] + event["output_tokens"])
    expected = [(e["user"], e["signal"], e["value"], e["baseline"]) for e in live.events("alert")]
    assert [(a.user, a.signal, a.value, a.baseline) for a in alerts] == expected
    (alert,) = alerts
    assert alert.signal == "requests per minute"
    assert alert.value == 20
    assert alert.at == START + 300 + 19
    assert alert.request_ids == tuple(f"req_alice_{START + 300 + i:.0f}" for i in range(15, 20))


def test_replicas_logs_replayed_together_give_the_alert_no_replica_sees(tmp_path: Path) -> None:
    events = steady_then_burst()
    replicas: list[list[dict[str, Any]]] = [[], [], []]
    for index, event in enumerate(events):  # a load balancer spreads the calls round-robin
        replicas[index % 3].append(event)
    paths = []
    for number, share in enumerate(replicas):
        path = tmp_path / f"replica-{number}.log"
        write_lines(path, share)
        paths.append(path)
    assert all(replay_alerts(read_events(p).events) == [] for p in paths)
    merged = read_events(*paths)
    (alert,) = replay_alerts(merged.events)
    assert (alert.user, alert.value) == ("alice", 20)


def test_alert_payload_carries_no_key_and_reads_well() -> None:
    alert = Alert("alice", "requests per minute", 20, 2.0, 5.0, START, ("req_1", "req_2"))
    payload = alert.payload()
    assert payload["alert"] == {
        "user": "alice",
        "signal": "requests per minute",
        "value": 20,
        "baseline": 2.0,
        "factor": 5.0,
        "at": START,
        "time": "2030-03-17T17:47:20Z",
        "request_ids": ["req_1", "req_2"],
    }
    assert payload["text"] == (
        "usage anomaly: alice made 20 requests per minute at 2030-03-17T17:47:20Z, against a "
        "baseline of 2 (alert at 5x)"
    )


def png_digest(events: list[dict[str, Any]]) -> str:
    usage = usage_by_minute(events)
    figure = plot_usage(usage, replay_alerts(events))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_the_figure_is_deterministic_and_marks_the_alert() -> None:
    events = steady_then_burst() + steady_then_burst("bob")[:10]
    usage = usage_by_minute(events)
    alerts = replay_alerts(events)
    figure = plot_usage(usage, alerts)
    calls, tokens = figure.axes
    assert [line.get_label() for line in calls.lines][:2] == ["alice", "bob"]
    markers = [line for line in calls.lines if line.get_label() == "alert"]
    assert len(markers) == 1
    assert [float(x) for x in markers[0].get_xdata()] == [5]  # type: ignore[union-attr,arg-type]
    assert [float(y) for y in markers[0].get_ydata()] == [20]  # type: ignore[union-attr,arg-type]
    assert "minutes since 2030-03-17 17:47 UTC" in tokens.get_xlabel()
    assert png_digest(events) == png_digest(events)


def test_an_audit_file_holds_json_lines_only_owner_readable_and_redacted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    secret = canary_key().reveal()
    trail = AuditTrail(clock=lambda: START, logger=None)
    sink = AuditFile(path)
    trail.subscribe(sink)
    trail.record("message", user="alice", input_tokens=3, output_tokens=4, request_id="req_1")
    trail.record("login_failed", user=f"pasted {secret}", status=401)
    sink.close()
    trail.record("logout", user="alice")  # after close: dropped, no error
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert len(text.splitlines()) == 2
    log = read_events(path)
    assert log.malformed == 0
    assert log.events[0] == {
        "event": "message",
        "at": START,
        "user": "alice",
        "input_tokens": 3,
        "output_tokens": 4,
        "request_id": "req_1",
    }
