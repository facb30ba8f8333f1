"""BackgroundServer: real uvicorn on loopback, started, used and stopped from a thread."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from patterns.errors import ServingError
from patterns.keys import canary_key
from patterns.serving import BackgroundServer, free_port, serve


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/log")
    def log() -> dict[str, bool]:
        logging.getLogger("uvicorn.error").warning("the key is %s", CANARY.reveal())
        return {"logged": True}

    return app


CANARY = canary_key()


def test_serves_on_a_free_loopback_port_and_stops() -> None:
    with BackgroundServer(make_app()) as server:
        assert server.running
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "/hello").json() == {"hello": "world"}
        port = server.port
    assert "stopped" in repr(server)
    assert server.port is None
    with socket.socket() as sock:  # the port is free again
        sock.bind(("127.0.0.1", port))


def test_two_servers_get_two_ports() -> None:
    first, second = serve(make_app()), serve(make_app())
    try:
        assert first.port != second.port
        assert httpx.get(second.url + "/hello").status_code == 200
    finally:
        first.stop()
        second.stop()


def test_start_is_idempotent_and_stop_is_safe_twice() -> None:
    server = BackgroundServer(make_app()).start()
    assert server.start() is server
    server.stop()
    server.stop()


def test_url_before_start_is_a_clear_error() -> None:
    with pytest.raises(ServingError, match="call start"):
        _ = BackgroundServer(make_app()).url


def test_busy_port_is_reported() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ServingError, match="cannot listen"):
            BackgroundServer(make_app(), port=port).start()


def test_failing_startup_is_reported_and_leaves_no_thread() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.title:  # always: the database is down
            raise RuntimeError("database unreachable")
        yield  # pragma: no cover

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ServingError, match="did not start"):
        BackgroundServer(FastAPI(lifespan=lifespan)).start(timeout=5)
    assert {t.name for t in threading.enumerate()} <= before


def test_fixed_port_is_honoured() -> None:
    port = free_port()
    with BackgroundServer(make_app(), port=port) as server:
        assert server.port == port


def test_server_logs_are_redacted(capfd: pytest.CaptureFixture[str]) -> None:
    with BackgroundServer(make_app(), access_log=True, log_level="info") as server:
        assert httpx.get(server.url + "/log").json() == {"logged": True}
        httpx.get(server.url + "/hello", params={"key": CANARY.reveal()})
    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert CANARY.reveal() not in output
    assert "[REDACTED sk-ant-api03-" in output
