"""Review findings on the stand-in: its admin routes cannot be driven by a web page, and a
key pasted into a URL does not reach its request log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from patterns.keys import canary_key
from patterns.serving import BackgroundServer
from patterns.upstream import UpstreamSettings, controls_of, create_app


@pytest.fixture(scope="module")
def stand_in() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(UpstreamSettings(admin_enabled=True))) as server:
        yield server


FAULT = {"kind": "fail", "status": 529, "count": 1}


def test_admin_accepts_json_from_a_loopback_tool(stand_in: BackgroundServer) -> None:
    response = httpx.post(f"{stand_in.url}/_stand-in/faults", json=FAULT)
    assert response.status_code == 200
    assert httpx.delete(f"{stand_in.url}/_stand-in/faults").status_code == 200


def test_admin_refuses_a_simple_cross_site_post(stand_in: BackgroundServer) -> None:
    response = httpx.post(
        f"{stand_in.url}/_stand-in/faults",
        content=b'{"kind": "fail", "status": 529}',
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 400
    assert controls_of(stand_in.app).faults.pending() == []


def test_admin_refuses_other_origins_and_rebound_host_names(stand_in: BackgroundServer) -> None:
    with_origin = httpx.post(
        f"{stand_in.url}/_stand-in/faults", json=FAULT, headers={"origin": "https://evil.example"}
    )
    assert with_origin.status_code == 403
    rebound = httpx.get(f"{stand_in.url}/_stand-in/requests", headers={"host": "attacker.example"})
    assert rebound.status_code == 403
    assert controls_of(stand_in.app).faults.pending() == []


def test_a_key_in_the_url_is_redacted_in_the_request_log(stand_in: BackgroundServer) -> None:
    key = canary_key()
    httpx.get(f"{stand_in.url}/v1/models/{key.reveal()}")
    log = httpx.get(f"{stand_in.url}/_stand-in/requests").text
    assert key.reveal() not in log
    assert "[REDACTED sk-ant-api03-" in log
