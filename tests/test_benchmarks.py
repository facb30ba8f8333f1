"""The benchmarks run in CI in their short mode, so they cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_token_proxy_benchmark_short_mode(tmp_path: Path, redis_server: str) -> None:
    output = tmp_path / "token-proxy.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/token_proxy.py", "--short", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(output.read_text())
    assert set(results["routes"]) == {"direct", "proxy (memory store)", "proxy (Redis store)"}
    for row in results["routes"].values():
        assert row["p50_ms"] > 0
        assert row["rps_c32"] > 0
        assert row["first_byte_ms"] > 0
    assert set(results["redeem"]) == {"memory", "redis"}
    assert "| proxy (Redis store) |" in result.stdout
