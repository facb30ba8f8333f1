"""The BFF benchmark runs in CI in its short mode, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bff_benchmark_short_mode(tmp_path: Path) -> None:
    output = tmp_path / "bff.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bff.py", "--short", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(output.read_text())
    relays = {"naive relay (FastAPI + httpx)", "lean relay (ASGI + UpstreamPool)"}
    # Redis only in full mode
    assert set(results["routes"]) == {"direct", *relays, "BFF (memory stores)"}
    for row in results["routes"].values():
        assert row["p50_ms"] > 0
        assert row["p99_ms"] >= row["p50_ms"]
        assert row["rps_c32"] > 0
        assert row["c32_failures"] == 0, row["c32_failure_kinds"]
        assert row["first_byte_ms"] > 0
        assert row["same_bytes_as_upstream"] is True
        assert row["stream_chunks"] > 5  # streamed event by event, not one buffered block
    assert results["routes"]["direct"]["proxy_cpu_ms_per_call"] is None
    assert results["routes"]["BFF (memory stores)"]["proxy_cpu_ms_per_call"] >= 0
    if sys.platform == "linux":  # pinned with sched_setaffinity: a second c=1 measurement
        assert isinstance(results["one_core"], int)
        for row in results["routes"].values():
            assert row["p50_one_core_ms"] > 0
            assert row["p99_one_core_ms"] >= row["p50_one_core_ms"]
    assert output.with_suffix(".png").stat().st_size > 1000
    assert "| BFF (memory stores) |" in result.stdout


def test_the_stub_upstream_answers_the_sdk_plain_and_streamed() -> None:
    # benchmarks/bff.py --upstream stub sets its figures beside DESIGN.md's: the stub must
    # still be an upstream the official SDK accepts, answered and streamed.
    import anthropic

    from benchmarks.common import server

    with server([str(REPO / "benchmarks" / "stub_upstream.py"), "--port", "0"]) as stub:
        client = anthropic.Anthropic(base_url=stub.url, api_key="unused-by-the-stub")
        messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
        answer = client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=messages)
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=16, messages=messages
        ) as stream:
            final = stream.get_final_message()
    plain, streamed = answer.content[0], final.content[0]
    assert plain.type == streamed.type == "text"
    assert isinstance(plain, anthropic.types.TextBlock)
    assert streamed.text == plain.text
    assert plain.text
    assert final.usage.output_tokens == answer.usage.output_tokens > 0
