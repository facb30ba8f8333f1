"""Token proxy overhead, measured against a direct call in the same run.

    python benchmarks/token_proxy.py            # full run (a minute or two)
    python benchmarks/token_proxy.py --short    # a few seconds: what CI runs

Starts the local stand-in and the token proxy as separate processes (as in production: the
client, the proxy and the API do not share an interpreter), then measures:

- latency at concurrency 1 (p50, p95) of a direct call and of the same call through the
  proxy, with a memory store and, when redis-server is available, a Redis store;
- throughput at concurrency 32;
- time to the first byte of a streamed reply;
- the cost of one redemption in each store, in-process.

Prints a Markdown table and writes JSON next to this file (``results/token-proxy.json``).
Numbers depend on the machine; the ratios are what carry over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from patterns.keys import demo_key
from patterns.tokens import MemoryTokenStore, RedisTokenStore, TokenService

try:
    from benchmarks.common import percentile, process, redis_server
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from common import percentile, process, redis_server  # type: ignore[no-redef,import-not-found]

ISSUER = "benchmark-issuer-secret-" + "b" * 16
MODEL = "claude-haiku-4-5"
BODY = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
RESULTS = Path(__file__).parent / "results" / "token-proxy.json"


def latency(url: str, headers: dict[str, str], count: int) -> dict[str, float]:
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(min(20, count)):  # warm the connection and the server
            client.post("/v1/messages", json=BODY).raise_for_status()
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            client.post("/v1/messages", json=BODY).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 0.95)}


def throughput(url: str, headers: dict[str, str], count: int, concurrency: int = 32) -> float:
    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
            queue = iter(range(count))

            async def worker() -> None:
                for _ in queue:
                    (await client.post("/v1/messages", json=BODY)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return count / (time.perf_counter() - started)

    return asyncio.run(run())


def first_byte(url: str, headers: dict[str, str], count: int) -> float:
    samples = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            with client.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as reply:
                chunks = reply.iter_raw()
                next(chunks)
                samples.append((time.perf_counter() - started) * 1000)
                for _ in chunks:  # drain, so the connection can be reused
                    pass
    return statistics.median(samples)


def redeem_cost(service: TokenService, count: int) -> dict[str, float]:
    token = service.mint("bench", max_uses=count + 1).token
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        service.redeem(token, model=MODEL, max_tokens=16)
        samples.append((time.perf_counter() - t0) * 1e6)
    elapsed = time.perf_counter() - started
    return {"p50_us": statistics.median(samples), "per_second": count / elapsed}


def mint_token(proxy_url: str) -> str:
    response = httpx.post(
        f"{proxy_url}/tokens",
        json={"user_id": "bench", "max_uses": 1_000_000},
        headers={"authorization": f"Bearer {ISSUER}"},
    )
    response.raise_for_status()
    return str(response.json()["token"])


def measure(short: bool) -> dict[str, Any]:
    n_latency, n_burst, n_stream, n_redeem = (30, 64, 5, 200) if short else (600, 3000, 50, 5000)
    key = demo_key("upstream")
    roomy = ["--requests-per-minute", "100000000", "--input-tokens-per-minute", "1000000000"]
    roomy += ["--output-tokens-per-minute", "1000000000"]
    proxy_env = {"PATTERNS_TOKEN_ISSUER_SECRET": ISSUER}
    version = {"anthropic-version": "2023-06-01"}
    results: dict[str, Any] = {"short": short, "routes": {}, "redeem": {}}
    with ExitStack() as stack:
        upstream = stack.enter_context(process(["serve", "upstream", "--port", "0", *roomy]))
        redis = stack.enter_context(redis_server())
        redis_url = None if redis is None else redis.url
        routes = {"direct": (upstream, {"x-api-key": key.reveal(), **version})}
        memory = stack.enter_context(
            process(
                ["serve", "token-proxy", "--port", "0", "--upstream", upstream, "--use-demo-key"],
                proxy_env,
            )
        )
        routes["proxy (memory store)"] = (memory, {"x-api-key": mint_token(memory), **version})
        if redis_url:
            command = ["serve", "token-proxy", "--port", "0", "--upstream", upstream]
            command += ["--use-demo-key", "--redis", redis_url]
            shared = stack.enter_context(process(command, proxy_env))
            routes["proxy (Redis store)"] = (shared, {"x-api-key": mint_token(shared), **version})
        for name, (url, headers) in routes.items():
            results["routes"][name] = {
                **latency(url, headers, n_latency),
                "rps_c32": throughput(url, headers, n_burst),
                "first_byte_ms": first_byte(url, headers, n_stream),
            }
        results["redeem"]["memory"] = redeem_cost(TokenService(MemoryTokenStore()), n_redeem)
        if redis_url:
            store = RedisTokenStore.from_url(redis_url)
            results["redeem"]["redis"] = redeem_cost(TokenService(store), n_redeem)
    return results


def report(results: dict[str, Any]) -> str:
    direct = results["routes"]["direct"]
    lines = [
        "| route | p50 ms | p95 ms | added p50 ms | req/s at c=32 | ratio to direct | "
        "first SSE byte ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results["routes"].items():
        lines.append(
            f"| {name} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
            f"{row['p50_ms'] - direct['p50_ms']:+.2f} | {row['rps_c32']:.0f} | "
            f"{row['rps_c32'] / direct['rps_c32']:.2f} | {row['first_byte_ms']:.2f} |"
        )
    lines += ["", "| store | redeem p50 µs | redeems/s (one thread) |", "|---|---|---|"]
    for name, row in results["redeem"].items():
        lines.append(f"| {name} | {row['p50_us']:.1f} | {row['per_second']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="few requests, for CI")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    args = parser.parse_args(argv)
    results = measure(args.short)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
