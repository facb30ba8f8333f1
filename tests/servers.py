"""Servers the end-to-end tests start, and the two calls they make on them.

One place for what several test modules did with copies: the stand-in API in a thread,
``python -m patterns serve token-proxy`` and ``serve bff`` as child processes (with every
``ANTHROPIC_*`` variable removed from their environment, so nothing can reach the real API),
and a redis-server of a test's own. A missing redis-server goes through
:func:`tests.support.require_binary`: a skip locally, a failure under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx

from patterns.keys import ApiKey
from patterns.serving import BackgroundServer, free_port
from patterns.upstream import RateLimits, UpstreamSettings
from patterns.upstream import create_app as create_upstream
from tests.support import require_binary

MODEL = "claude-haiku-4-5"
#: Limits no end-to-end test reaches: a 429 from the stand-in would hide what is tested.
GENEROUS = RateLimits(100_000, 10**8, 10**8)
PROXY_BANNER = "Temporary-token proxy on http://127.0.0.1:"
BFF_BANNER = "Backend-for-frontend on http://127.0.0.1:"
BFF_BANNER_LINES = 3  # after the first: upstream and users, stores and sealing, models


# -- the stand-in API, in this process --------------------------------------------------------


def stand_in(
    *keys: ApiKey, limits: RateLimits = GENEROUS, request_log_size: int = 200
) -> BackgroundServer:
    """The stand-in accepting ``keys``, not started yet: use it in a ``with``."""
    settings = UpstreamSettings(api_keys=keys, limits=limits, request_log_size=request_log_size)
    return BackgroundServer(create_upstream(settings))


# -- serve token-proxy and serve bff, as child processes --------------------------------------


def child_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any ``ANTHROPIC_*`` variable, plus ``variables``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return {**environment, **variables}


def write_key_file(path: Path, key: ApiKey) -> Path:
    """Write ``key`` and a newline to ``path``, readable by its owner only (what
    ``--key-file`` requires), and return the path."""
    path.write_text(key.reveal() + "\n")
    path.chmod(0o600)
    return path


def start_token_proxy(
    upstream_url: str, redis_url: str, key_file: Path, *, issuer: ApiKey, extra: Sequence[str] = ()
) -> subprocess.Popen[str]:
    """``serve token-proxy --key-file`` on a free port and ``redis_url``; read its URL with
    :func:`read_url` (starting several first lets them start side by side)."""
    command = [sys.executable, "-m", "patterns", "serve", "token-proxy", "--port", "0"]
    command += ["--upstream", upstream_url, "--redis", redis_url, "--key-file", str(key_file)]
    environment = child_environment(PATTERNS_TOKEN_ISSUER_SECRET=issuer.reveal())
    return subprocess.Popen([*command, *extra], env=environment, stdout=subprocess.PIPE, text=True)


def spawn_token_proxy(
    upstream_url: str, redis_url: str, key_file: Path, *, issuer: ApiKey, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    """:func:`start_token_proxy`, once it serves: the process and its URL."""
    process = start_token_proxy(upstream_url, redis_url, key_file, issuer=issuer, extra=extra)
    return process, read_url(process, PROXY_BANNER)


def spawn_bff(
    upstream_url: str,
    redis_url: str,
    kms_file: Path,
    *,
    passphrase: str,
    users: Mapping[str, str],
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], str]:
    """``serve bff`` on a free port, ``redis_url`` and the LocalKms file ``kms_file``, once it
    serves: the process and its URL. ``users`` (name to password) and the passphrase go
    through the environment, as the CLI asks."""
    command = [sys.executable, "-m", "patterns", "serve", "bff", "--port", "0"]
    command += ["--upstream", upstream_url, "--redis", redis_url, "--kms-file", str(kms_file)]
    environment = child_environment(
        PATTERNS_BFF_KMS_PASSPHRASE=passphrase,
        PATTERNS_BFF_USERS=",".join(f"{name}:{password}" for name, password in users.items()),
    )
    process = subprocess.Popen(
        [*command, *extra], env=environment, stdout=subprocess.PIPE, text=True
    )
    return process, read_url(process, BFF_BANNER, then_skip=BFF_BANNER_LINES)


def read_url(process: subprocess.Popen[str], banner: str, *, then_skip: int = 0) -> str:
    """The URL on the server's first line (it starts with ``banner``), then skip
    ``then_skip`` more lines of its banner."""
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    assert first.startswith(banner), first
    for _ in range(then_skip):
        process.stdout.readline()
    return first.rsplit(" ", 1)[1]


def stop(process: subprocess.Popen[str]) -> None:
    """Terminate a server started here, wait for it and close its pipe."""
    process.terminate()
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


# -- calls on a token proxy -------------------------------------------------------------------


def mint(url: str, user: str = "alice", *, issuer: ApiKey) -> str:
    """A temporary token for ``user`` from the proxy at ``url`` (201 or the test fails)."""
    response = httpx.post(
        f"{url}/tokens",
        json={"user_id": user},
        headers={"authorization": f"Bearer {issuer.reveal()}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def ask(url: str, token: str) -> None:
    """One small Messages call through ``url`` with the official SDK, no retries."""
    anthropic.Anthropic(base_url=url, api_key=token, max_retries=0).messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )


# -- a redis-server of a test's own ----------------------------------------------------------


@contextmanager
def own_redis(*options: str) -> Iterator[str]:
    """A redis-server of this test's own, configured as the test needs; yields its URL."""
    import redis

    binary = require_binary(["redis-server"], install_hint="apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with redis.Redis(host="127.0.0.1", port=port) as client:
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
