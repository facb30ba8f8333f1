"""Two `serve token-proxy --key-file` processes sharing Redis: the operator writes the new
key to the key file and runs `python -m patterns rotate-org-key` against both replicas
while clients keep calling both (zero failed requests); then the leak path revokes every
earlier token on both replicas."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anthropic
import pytest

from patterns.__main__ import main
from patterns.keys import ApiKey, canary_key
from patterns.serving import BackgroundServer
from tests import servers

OLD, NEW, NEWER = canary_key(), canary_key(), canary_key()
ISSUER = ApiKey("issuer-secret-for-replica-tests-" + "r" * 8)
MODEL = servers.MODEL


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    with servers.stand_in(OLD, NEW, NEWER) as server:
        yield server


_spawn = partial(servers.start_token_proxy, issuer=ISSUER, extra=("--max-uses", "1000000"))
_mint = partial(servers.mint, issuer=ISSUER)


def _url_of(process: subprocess.Popen[str]) -> str:
    url = servers.read_url(process, servers.PROXY_BANNER)
    assert process.stdout is not None
    assert OLD.reveal() not in process.stdout.readline()
    return url


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The operator's command, in this process (the proxies are the separate processes)."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.timeout(120)
def test_rollover_across_two_replicas_under_traffic(
    upstream: BackgroundServer,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTERNS_TOKEN_ISSUER_SECRET", ISSUER.reveal())
    key_file = servers.write_key_file(tmp_path / "org.key", OLD)
    processes = [_spawn(upstream.url, redis_url, key_file) for _ in range(2)]  # start together
    urls = [_url_of(process) for process in processes]
    stop = threading.Event()
    results: list[str] = []

    def client(url: str, token: str) -> None:
        sdk = anthropic.Anthropic(base_url=url, api_key=token, max_retries=0)
        while not stop.is_set():
            try:
                sdk.messages.create(
                    model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
                )
                results.append("ok")
            except anthropic.APIError as error:
                results.append(type(error).__name__)

    try:
        # Tokens minted on one replica are redeemed on the other (shared Redis store).
        old_tokens = [_mint(urls[0]), _mint(urls[1])]
        threads = [
            threading.Thread(target=client, args=(urls[i], old_tokens[1 - i]), daemon=True)
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        key_file.write_text(NEW.reveal() + "\n")
        status, rotated = _cli(
            capsys, "rotate-org-key", "--proxy", urls[0], "--proxy", urls[1], "--grace", "300"
        )
        assert status == 0, rotated
        assert rotated.count(f"new tokens use org-{NEW.fingerprint[7:]}") == 2
        new_token = _mint(urls[1])
        extra = threading.Thread(target=client, args=(urls[0], new_token), daemon=True)
        extra.start()
        threads.append(extra)
        time.sleep(0.8)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert results.count("ok") >= 20
        assert [r for r in results if r != "ok"] == []

        key_file.write_text(NEWER.reveal() + "\n")
        status, leak = _cli(
            capsys,
            "incident",
            "org-key-leaked",
            "--proxy",
            urls[0],
            "--proxy",
            urls[1],
            "--leaked",
            NEW.fingerprint,
        )
        assert status == 0, leak
        for token in [*old_tokens, new_token]:
            for url in urls:
                with pytest.raises(anthropic.AuthenticationError):
                    servers.ask(url, token)
        fresh = _mint(urls[0])
        for url in urls:
            servers.ask(url, fresh)
        for key in (OLD, NEW, NEWER):
            assert key.reveal() not in rotated + leak
    finally:
        stop.set()
        for process in processes:
            servers.stop(process)
