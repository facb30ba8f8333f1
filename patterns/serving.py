"""Run an ASGI app with uvicorn in a background thread on a free loopback port.

Notebooks and tests need real servers (the stand-in API, the BFF, the token proxy) without a
terminal per server. :class:`BackgroundServer` binds the socket itself, so the port is known
before uvicorn starts and two servers can never race for it, waits until uvicorn reports
that it is accepting connections, and stops it cleanly. Its logs pass through the
redacting filter of :mod:`patterns.scanning`.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

import uvicorn

from patterns.errors import ServingError

__all__ = ["BackgroundServer", "free_port", "log_config", "run_in_foreground", "serve"]

_START_TIMEOUT: Final = 15.0
_STOP_TIMEOUT: Final = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago (prefer binding port 0 yourself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def log_config(level: str = "warning") -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`~patterns.scanning.RedactingFilter` on
    every handler, so that no server of this package can log a key."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "patterns.scanning.RedactingFilter"}},
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": False,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {
                "handlers": ["access"],
                "level": level.upper(),
                "propagate": False,
            },
            # The package's own loggers (audit events, store errors) go through the same
            # redacting handler, whatever the host application did to the root logger.
            "patterns": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }
    return config


class BackgroundServer:
    """A uvicorn server in a daemon thread, bound to ``host`` on a free port by default.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with BackgroundServer(app) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        access_log: bool = False,
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=log_config(log_level),
            access_log=access_log,
            lifespan="auto",
            **{"server_header": False, **uvicorn_options},  # no "server: uvicorn" banner
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        if self.port is None:
            raise ServingError("the server is not running: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = _START_TIMEOUT) -> BackgroundServer:
        """Bind the socket, start uvicorn in a thread and wait until it accepts connections."""
        if self.running:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as error:
            sock.close()
            raise ServingError(
                f"cannot listen on {self.host}:{self._requested_port} ({error.strerror}); "
                "choose another port or stop the program that holds it"
            ) from None
        self._socket = sock
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(self._config)
        self._server = server
        self._error = None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as error:  # reported to the starting thread
                self._error = error

        self._thread = threading.Thread(target=run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = repr(self._error) if self._error else "it did not report ready in time"
                raise ServingError(f"the server did not start: {reason}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Ask uvicorn to finish open requests and exit; force it after ``timeout`` seconds."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.port = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.port is not None else "stopped"
        return f"<BackgroundServer {state}>"


def serve(app: Any, **options: Any) -> BackgroundServer:
    """Start ``app`` in the background and return the running server (stop it when done)."""
    return BackgroundServer(app, **options).start()


def run_in_foreground(
    app: Any,
    *,
    name: str,
    host: str,
    port: int,
    banner: Sequence[str] = (),
    log_level: str = "warning",
) -> int:
    """Serve ``app`` until interrupted, for the ``python -m patterns serve`` commands.

    Binds and listens *before* printing ``<name> on http://host:port`` (and the banner), so
    a script that reads the first line and connects at once is queued rather than refused.
    Returns 2 with a clear message when the address is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        print(
            f"{name}: cannot listen on {host}:{port} ({error.strerror}); "
            "pass --port 0 for a free port",
            file=sys.stderr,
        )
        return 2
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    if host not in {"127.0.0.1", "::1", "localhost"}:
        print(f"warning: {name} is listening beyond loopback", flush=True)
    print(f"{name} on http://{shown_host}:{bound}", flush=True)
    for line in banner:
        print(line, flush=True)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config(log_level),
        access_log=log_level != "warning",
        server_header=False,  # do not advertise the server software and version
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
