"""Servers the end-to-end tests start, and the two calls they make on them.

One place for what several test modules did with copies: the stand-in API in a thread,
``python -m patterns serve token-proxy`` and ``serve bff`` as child processes (with every
``ANTHROPIC_*`` variable removed from their environment, so nothing can reach the real API;
only a test that hands the proxy its key through ``ANTHROPIC_API_KEY`` sets that one, and
its ``--upstream`` is the stand-in), and a redis-server of a test's own. A missing
redis-server goes through :func:`tests.support.require_binary`: a skip locally, a failure
under ``CI=true``; one that does not answer fails the test, never skips it.
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
import pytest

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
    upstream_url: str,
    redis_url: str,
    key: Path | ApiKey,
    *,
    issuer: ApiKey,
    extra: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """``serve token-proxy`` on a free port and ``redis_url``; read its URL with
    :func:`read_url` (starting several first lets them start side by side). A path ``key``
    goes to ``--key-file``; an :class:`ApiKey` goes through ``ANTHROPIC_API_KEY``, the CLI's
    other source of the organisation key."""
    command = [sys.executable, "-m", "patterns", "serve", "token-proxy", "--port", "0"]
    command += ["--upstream", upstream_url, "--redis", redis_url]
    variables = {"PATTERNS_TOKEN_ISSUER_SECRET": issuer.reveal()}
    if isinstance(key, ApiKey):
        variables["ANTHROPIC_API_KEY"] = key.reveal()
    else:
        command += ["--key-file", str(key)]
    environment = child_environment(**variables)
    return subprocess.Popen([*command, *extra], env=environment, stdout=subprocess.PIPE, text=True)


def spawn_token_proxy(
    upstream_url: str,
    redis_url: str,
    key: Path | ApiKey,
    *,
    issuer: ApiKey,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], str]:
    """:func:`start_token_proxy`, once it serves: the process and its URL."""
    process = start_token_proxy(upstream_url, redis_url, key, issuer=issuer, extra=extra)
    return process, read_url(process, PROXY_BANNER)


def start_bff(
    upstream_url: str,
    redis_url: str | None,
    kms_file: Path | None,
    *,
    users: Mapping[str, str],
    passphrase: str | None = None,
    extra: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """``serve bff`` on a free port; read its URL with :func:`read_url` or
    :func:`read_banner`. ``redis_url`` None keeps its stores in memory, ``kms_file`` None
    seals with an ephemeral LocalKms. ``users`` (name to password) and the passphrase go
    through the environment, as the CLI asks, with ``variables`` (e.g. a webhook URL)."""
    command = [sys.executable, "-m", "patterns", "serve", "bff", "--port", "0"]
    command += ["--upstream", upstream_url]
    if redis_url is not None:
        command += ["--redis", redis_url]
    if kms_file is not None:
        command += ["--kms-file", str(kms_file)]
    settings = dict(variables or {})
    specs = (f"{name}:{password}" for name, password in users.items())
    settings["PATTERNS_BFF_USERS"] = ",".join(specs)
    if passphrase is not None:
        settings["PATTERNS_BFF_KMS_PASSPHRASE"] = passphrase
    environment = child_environment(**settings)
    return subprocess.Popen([*command, *extra], env=environment, stdout=subprocess.PIPE, text=True)


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
    serves: the process and its URL (see :func:`start_bff`)."""
    process = start_bff(
        upstream_url, redis_url, kms_file, users=users, passphrase=passphrase, extra=extra
    )
    return process, read_url(process, BFF_BANNER, then_skip=BFF_BANNER_LINES)


def read_banner(
    process: subprocess.Popen[str], banner: str, *, lines: int
) -> tuple[str, list[str]]:
    """The URL on the server's first line (it starts with ``banner``) and the next ``lines``
    lines of its banner, for a test to check. A server that printed something else or
    exited is stopped and the test fails, saying so."""
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith(banner):
        try:  # an empty line is end of output: the server is exiting, say with what status
            status: int | None = process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        exited = "" if status is None else f" (it exited with status {status})"
        pytest.fail(f"expected a first line starting {banner!r}{exited}, got {first!r}")
    return first.rsplit(" ", 1)[1], [process.stdout.readline() for _ in range(lines)]


def read_url(process: subprocess.Popen[str], banner: str, *, then_skip: int = 0) -> str:
    """The URL on the server's first line (it starts with ``banner``), then skip
    ``then_skip`` more lines of its banner."""
    return read_banner(process, banner, lines=then_skip)[0]


def stop(process: subprocess.Popen[str], *, timeout: float = 10) -> None:
    """Terminate a server started here, wait for it (up to ``timeout`` s) and close its
    pipe."""
    process.terminate()
    process.wait(timeout=timeout)
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
    """A redis-server of this test's own, configured as the test needs; yields its URL.
    One that does not answer a ping within 10 s, or exits, fails the test (as conftest's
    ``redis_server`` does): a test must not go on against a server that is not there."""
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
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    status = process.poll()
                    if status is not None or time.monotonic() > deadline:
                        why = "did not answer a ping within 10 s"
                        if status is not None:
                            why = f"exited with status {status}"
                        started = " ".join(["redis-server", *options])
                        pytest.fail(f"{started} on port {port} {why}")
                    time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
