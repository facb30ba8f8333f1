"""Key age: an inventory of fingerprints and creation times, reminders past a configurable
age, a webhook a team can point at its chat or pager (tested with a local receiver), the
token proxy's keyring as a source, and `python -m patterns key-age`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from patterns.__main__ import main
from patterns.clock import FakeClock
from patterns.errors import ConfigurationError
from patterns.keys import canary_key
from patterns.lifecycle.age import (
    KeyInventory,
    TrackedKey,
    check_key_ages,
    keyring_keys,
    webhook_notifier,
)
from patterns.serving import BackgroundServer
from patterns.tokens.keyring import Keyring

DAY = 86_400.0
NOW = 1_900_000_000.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        received.append(await request.json())
        return {"ok": True}

    with BackgroundServer(app) as server:
        yield f"{server.url}/hook", received


def test_reminders_past_and_near_the_limit() -> None:
    keys = [
        TrackedKey("fresh", "sha256:00000001", NOW - 10 * DAY),
        TrackedKey("soon", "sha256:00000002", NOW - 80 * DAY),
        TrackedKey("old", "sha256:00000003", NOW - 120 * DAY),
    ]
    seen: list[Any] = []
    reminders = check_key_ages(keys, max_age_days=90, warn_days=14, now=NOW, notify=seen.append)
    assert [(r.name, r.overdue) for r in reminders] == [("old", True), ("soon", False)]
    assert seen == reminders
    assert (
        str(reminders[0])
        == "old (sha256:00000003) is 120 days old, past the 90-day limit: rotate it"
    )
    assert "reaches the 90-day limit in 10 days" in str(reminders[1])
    assert check_key_ages(keys, max_age_days=365, now=NOW) == []
    with pytest.raises(ConfigurationError):
        check_key_ages(keys, max_age_days=0)


def test_inventory_keeps_fingerprints_only(tmp_path: Path) -> None:
    key = canary_key()
    inventory = KeyInventory(tmp_path / "keys" / "inventory.json")
    assert inventory.tracked() == []
    inventory.track("org-production", key, created_at=NOW - 100 * DAY)
    inventory.track("org-staging", canary_key(), created_at=NOW)
    text = inventory.path.read_text()
    assert key.reveal() not in text
    assert key.fingerprint in text
    assert [k.name for k in inventory.tracked()] == ["org-production", "org-staging"]
    assert [r.name for r in check_key_ages(inventory.tracked(), now=NOW)] == ["org-production"]
    assert inventory.forget("org-production")
    assert not inventory.forget("org-production")
    inventory.path.write_text("{}")
    with pytest.raises(ConfigurationError, match="not a key inventory"):
        inventory.tracked()


def test_webhook_reminders_reach_a_local_receiver(
    receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url, received = receiver
    received.clear()
    old = TrackedKey("org", "sha256:0000000a", NOW - 91 * DAY)
    with caplog.at_level(logging.DEBUG):  # httpx logs each request's URL at INFO
        check_key_ages([old], now=NOW, notify=webhook_notifier(url))
    assert url not in caplog.text
    assert len(received) == 1
    assert received[0]["reminder"]["name"] == "org"
    assert received[0]["reminder"]["overdue"] is True
    assert "past the 90-day limit" in received[0]["text"]


def test_the_proxy_keyring_reports_its_key_ages() -> None:
    clock = FakeClock(NOW)
    first = canary_key()
    keyring = Keyring(first, clock=clock)
    clock.advance(95 * DAY)
    (reminder,) = check_key_ages(keyring_keys(keyring), now=clock())
    assert (reminder.name, reminder.overdue) == (f"org-{first.fingerprint[7:]}", True)
    keyring.rollover(canary_key(), grace=0)
    assert check_key_ages(keyring_keys(keyring), now=clock()) == []


def test_key_age_command(tmp_path: Path, capsys, monkeypatch, receiver) -> None:
    url, received = receiver
    received.clear()
    inventory = tmp_path / "inventory.json"
    key = canary_key()
    monkeypatch.setenv("ORG_KEY", key.reveal())
    assert (
        main(["key-age", "--inventory", str(inventory), "--track", "org", "--key-env", "ORG_KEY"])
        == 0
    )
    captured = capsys.readouterr()
    assert f"tracking org ({key.fingerprint})" in captured.out
    assert key.reveal() not in captured.out + captured.err + inventory.read_text()
    document = json.loads(inventory.read_text())
    document["keys"][0]["created_at"] = time.time() - 200 * DAY
    inventory.write_text(json.dumps(document))
    assert main(["key-age", "--inventory", str(inventory), "--webhook", url]) == 1
    captured = capsys.readouterr()
    assert "is 200 days old, past the 90-day limit" in captured.out
    assert "1 key(s) tracked, 1 overdue" in captured.err
    assert len(received) == 1
    assert main(["key-age", "--inventory", str(inventory), "--max-age-days", "365"]) == 0
    monkeypatch.delenv("MISSING_KEY", raising=False)
    assert (
        main(["key-age", "--inventory", str(inventory), "--track", "x", "--key-env", "MISSING_KEY"])
        == 2
    )
    assert main(["key-age", "--inventory", str(inventory), "--forget", "org"]) == 0
    assert "org: forgotten" in capsys.readouterr().out


def test_a_failing_webhook_hides_no_reminder_and_never_shows_its_url(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from patterns.serving import free_port

    inventory = KeyInventory(tmp_path / "inventory.json")
    inventory.track("org", canary_key(), created_at=time.time() - 200 * DAY)
    secret_url = f"http://127.0.0.1:{free_port()}/services/T000/B000/SECRETwebhookTOKEN"
    monkeypatch.setenv("PATTERNS_KEY_AGE_WEBHOOK", secret_url)
    assert main(["key-age", "--inventory", str(inventory.path)]) == 3
    captured = capsys.readouterr()
    assert "past the 90-day limit" in captured.out  # the reminder is printed first
    assert "webhook could not be reached" in captured.err
    assert "SECRETwebhookTOKEN" not in captured.out + captured.err


def test_a_remote_webhook_must_use_https() -> None:
    with pytest.raises(ConfigurationError, match="webhook"):
        webhook_notifier("http://hooks.example.com/services/T/B/X")
    webhook_notifier("https://hooks.example.com/services/T/B/X")
