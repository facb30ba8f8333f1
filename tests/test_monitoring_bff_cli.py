"""``serve bff --alert-webhook-env VAR``: a BFF process posts its anomaly alerts to the webhook
URL held in the environment (a local receiver here), prints only the webhook's host, and
refuses a missing variable or plain http to a remote host before it starts."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patterns.__main__ import main
from patterns.bff.client import BffClient
from patterns.keys import demo_key
from patterns.lifecycle.monitoring import read_events, replay_alerts
from patterns.models import DEFAULT_MODEL
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from tests import servers
from tests.test_alert_hooks import SECRET_PATH, Receiver

PASSWORD = "alice's long password for the cli test"
USER_KEY = demo_key("monitoring-bff-cli")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_a_missing_variable_or_a_plain_http_remote_webhook_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["serve", "bff", "--port", "0", "--user", f"alice:{PASSWORD}"]
    monkeypatch.delenv("TEST_BFF_PAGER", raising=False)
    assert main([*base, "--alert-webhook-env", "TEST_BFF_PAGER"]) == 2
    assert "TEST_BFF_PAGER is not set" in capsys.readouterr().err
    monkeypatch.setenv("TEST_BFF_PAGER", "http://hooks.example.com" + SECRET_PATH)
    assert main([*base, "--alert-webhook-env", "TEST_BFF_PAGER"]) == 2
    err = capsys.readouterr().err
    assert "use https" in err
    assert SECRET_PATH not in err


@pytest.mark.timeout(120)
def test_a_bff_process_pages_the_webhook_and_writes_the_audit_log_monitor_reads(
    receiver: Receiver, tmp_path: Path
) -> None:
    audit_log = tmp_path / "bff-audit.jsonl"
    limits = RateLimits(100_000, 10**8, 10**8)
    with BackgroundServer(create_upstream(UpstreamSettings((USER_KEY,), limits=limits))) as api:
        process = servers.start_bff(
            api.url,
            None,  # stores in memory
            None,  # keys sealed by an ephemeral LocalKms
            users={"alice": PASSWORD},
            extra=(
                *("--requests-per-minute", "1000", "--burst", "100"),
                *("--alert-webhook-env", "TEST_BFF_PAGER", "--audit-log", str(audit_log)),
            ),
            variables={"TEST_BFF_PAGER": receiver.url},
        )
        try:
            url, lines = servers.read_banner(process, servers.BFF_BANNER, lines=5)
            banner = "".join(lines)
            assert f"audit events: appended to {audit_log}" in banner
            assert "anomaly alerts: posted to http://127.0.0.1" in banner
            assert SECRET_PATH not in banner
            alice = BffClient(url).login("alice", PASSWORD)
            alice.store_key(USER_KEY)
            if time.time() % 60 > 50:  # keep the burst inside one wall-clock minute
                time.sleep(60 - time.time() % 60 + 0.5)
            body = {
                "model": DEFAULT_MODEL,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "hi"}],
            }
            statuses = [
                alice.request("POST", "/claude/messages", json=body).status_code for _ in range(22)
            ]
            assert statuses == [200] * 22
            deadline = time.monotonic() + 20
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            servers.stop(process, timeout=30)
    ((path, payload),) = receiver.received
    assert path == SECRET_PATH
    assert payload["alert"]["user"] == "alice"
    assert payload["alert"]["value"] == 20
    assert USER_KEY.reveal() not in str(payload)
    assert stat.S_IMODE(audit_log.stat().st_mode) == 0o600
    log = read_events(audit_log)
    assert log.malformed == 0
    assert len(log.of_kind("message")) == 22
    assert [e["event"] for e in log.events[:2]] == ["login", "key_stored"]
    (alert,) = replay_alerts(log.events)
    assert (alert.user, alert.value) == ("alice", 20)
    assert USER_KEY.reveal() not in audit_log.read_text(encoding="utf-8")
