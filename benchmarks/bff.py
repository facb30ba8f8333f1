"""Backend-for-frontend overhead, measured against a direct call in the same run.

    python benchmarks/bff.py            # full run (three or four minutes)
    python benchmarks/bff.py --short    # a few seconds: what CI runs

Starts the local stand-in, two relays that check nothing (``benchmarks/passthrough.py``: the
naive FastAPI + httpx proxy DESIGN.md measured, and a lean raw-ASGI relay on the BFF's own
upstream client, the cost of the hop itself) and ``python -m patterns serve bff`` as
separate processes (with memory stores, and in the full run also with Redis stores when
redis-server is installed),
signs in, stores the stand-in's key, then measures with the official SDK and with httpx:

- latency at concurrency 1 (p50, p99) of ``client.messages.create`` direct and through each
  proxy, the routes taken in turn call by call so that background load hits them alike (the
  SDK's own cost is in every route, so the difference is the proxy's); measured twice: with
  every process on one core (``common.one_core``: the proxy's own cost, without the
  cross-CPU wake-ups a VM makes dear and uneven) and with the scheduler free to use them all;
- the CPU time one call costs each proxy process (from ``/proc``): steadier than latency on a
  shared machine, and what bounds its throughput;
- throughput at concurrency 32 (httpx, so the client is not the bottleneck);
- streaming: the time to the first SSE byte, and whether each proxy passes every chunk as the
  upstream sent it (the stand-in pauses between events; a buffering proxy would merge them).

Prints a Markdown table, writes JSON and a plot next to this file (``results/bff.json``,
``results/bff.png``). Numbers depend on the machine; the differences are what carry over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import httpx

from patterns.bff.client import BffClient
from patterns.keys import demo_key

try:
    from benchmarks.common import Child, one_core, percentile, redis_server, server
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from common import (  # type: ignore[no-redef,import-not-found]
        Child,
        one_core,
        percentile,
        redis_server,
        server,
    )

MODEL = "claude-haiku-4-5"
PASSWORD = "benchmark password"
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
BODY = {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}
RESULTS = Path(__file__).parent / "results" / "bff.json"
PASSTHROUGH = str(Path(__file__).with_name("passthrough.py"))
STUB = str(Path(__file__).with_name("stub_upstream.py"))
NAIVE = "naive relay (FastAPI + httpx)"
LEAN = "lean relay (ASGI + UpstreamPool)"
_IDS = re.compile(rb'"(?:id|request_id)":"[^"]*"')


class Route:
    """How to reach the Messages API on one route: an SDK client and raw httpx headers, and
    the proxy process in between (None for the direct route)."""

    def __init__(
        self,
        sdk: anthropic.Anthropic,
        url: str,
        path: str,
        headers: dict[str, str],
        proxy: Child | None = None,
    ):
        self.sdk, self.url, self.path, self.headers = sdk, url, path, headers
        self.proxy = proxy


def latencies(routes: dict[str, Route], count: int) -> dict[str, dict[str, Any]]:
    """Sequential calls, one route after the other call by call, so load spikes from
    elsewhere on the machine land on every route alike; and each proxy's CPU per call.
    Whether the processes share one core is the caller's choice (:func:`one_core`)."""
    for route in routes.values():
        for _ in range(min(50, count)):  # warm connections, caches and the key cache
            route.sdk.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    samples: dict[str, list[float]] = {name: [] for name in routes}
    cpu_before = {name: _cpu(route) for name, route in routes.items()}
    for _ in range(count):
        for name, route in routes.items():
            started = time.perf_counter()
            route.sdk.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
            samples[name].append((time.perf_counter() - started) * 1000)
    results = {}
    for name, route in routes.items():
        before, after = cpu_before[name], _cpu(route)
        cpu = None if before is None or after is None else (after - before) * 1000 / count
        results[name] = {
            "p50_ms": statistics.median(samples[name]),
            "p99_ms": percentile(samples[name], 0.99),
            "proxy_cpu_ms_per_call": cpu,
            "samples": samples[name],
        }
    return results


def _cpu(route: Route) -> float | None:
    return None if route.proxy is None else route.proxy.cpu_seconds()


def throughput(route: Route, count: int, concurrency: int = 32) -> tuple[float, list[str]]:
    """Requests per second at ``concurrency``, and the failures (counted, not fatal: on a
    loaded machine a connection can drop, and the table should say so, not crash)."""
    failures: list[str] = []

    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=route.url, headers=route.headers, limits=limits, timeout=60
        ) as client:
            queue = iter(range(count))

            async def worker() -> None:
                for _ in queue:
                    try:
                        (await client.post(route.path, json=BODY)).raise_for_status()
                    except httpx.HTTPError as error:
                        failures.append(f"{type(error).__name__}: {error}"[:200])

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return (count - len(failures)) / (time.perf_counter() - started)

    return asyncio.run(run()), failures


def stream(route: Route, count: int) -> dict[str, Any]:
    """Median time to the first byte, and the chunks of the last reply (ids blanked)."""
    samples: list[float] = []
    chunks: list[bytes] = []
    with httpx.Client(base_url=route.url, headers=route.headers, timeout=30) as client:
        for _ in range(count):
            chunks = []
            started = time.perf_counter()
            with client.stream("POST", route.path, json={**BODY, "stream": True}) as reply:
                reply.raise_for_status()
                for chunk in reply.iter_raw():
                    if not chunks:
                        samples.append((time.perf_counter() - started) * 1000)
                    chunks.append(_IDS.sub(b'"id":""', chunk))
    return {"first_byte_ms": statistics.median(samples), "chunks": chunks}


def bff_route(proxy: Child, key: Any) -> Route:
    session = BffClient(proxy.url).login("bench", PASSWORD)
    session.store_key(key)
    headers = session.headers()
    return Route(session.sdk(max_retries=0), proxy.url, "/claude/messages", headers, proxy)


def floor_route(proxy: Child, key: Any) -> Route:
    sdk = anthropic.Anthropic(base_url=proxy.url, api_key=key.reveal(), max_retries=0)
    headers = {"anthropic-version": "2023-06-01", "x-api-key": key.reveal()}
    return Route(sdk, proxy.url, "/v1/messages", headers, proxy)


def measure(
    short: bool, calls: int | None = None, upstream_kind: str = "stand-in"
) -> dict[str, Any]:
    n_latency, n_burst, n_stream = (20, 32, 2) if short else (1000, 3000, 40)
    n_latency = calls or n_latency
    key = demo_key("upstream")
    roomy = ["--requests-per-minute", "100000000", "--input-tokens-per-minute", "1000000000"]
    roomy += ["--output-tokens-per-minute", "1000000000"]
    results: dict[str, Any] = {"short": short, "upstream": upstream_kind, "routes": {}}
    bff_options = ["--user", f"bench:{PASSWORD}", "--model", MODEL]
    bff_options += ["--requests-per-minute", "100000000", "--burst", "100000"]
    with ExitStack() as stack:
        if upstream_kind == "stub":
            started = [STUB, "--port", "0"]
        else:
            started = ["-m", "patterns", "serve", "upstream", "--port", "0", *roomy]
        upstream_child = stack.enter_context(server([*started, "--stream-delay", "0.002"]))
        upstream = upstream_child.url
        # The short mode (CI) skips the Redis route: one process fewer on a busy runner.
        redis = None if short else stack.enter_context(redis_server())
        redis_url = None if redis is None else redis.url
        direct = anthropic.Anthropic(base_url=upstream, api_key=key.reveal(), max_retries=0)
        version = {"anthropic-version": "2023-06-01", "x-api-key": key.reveal()}
        routes = {"direct": Route(direct, upstream, "/v1/messages", version)}
        naive = stack.enter_context(server([PASSTHROUGH, "--upstream", upstream]))
        routes[NAIVE] = floor_route(naive, key)
        lean = stack.enter_context(server([PASSTHROUGH, "--upstream", upstream, "--lean"]))
        routes[LEAN] = floor_route(lean, key)
        base = ["-m", "patterns", "serve", "bff", "--port", "0", "--upstream", upstream]
        memory = stack.enter_context(server([*base, *bff_options]))
        routes["BFF (memory stores)"] = bff_route(memory, key)
        if redis_url:
            shared = stack.enter_context(server([*base, *bff_options, "--redis", redis_url]))
            routes["BFF (Redis stores)"] = bff_route(shared, key)
        servers = [upstream_child.pid, *(r.proxy.pid for r in routes.values() if r.proxy)]
        servers += [redis.pid] if redis else []
        with one_core(servers) as cpu:
            pinned = latencies(routes, n_latency) if cpu is not None else None
        results["one_core"] = cpu
        for name, timed in latencies(routes, n_latency).items():
            results["routes"][name] = timed
            if pinned is not None:
                row = pinned[name]
                timed["p50_one_core_ms"], timed["p99_one_core_ms"] = row["p50_ms"], row["p99_ms"]
                timed["samples_one_core"] = row["samples"]
                timed["proxy_cpu_ms_per_call_one_core"] = row["proxy_cpu_ms_per_call"]
        for name, route in routes.items():
            streamed = stream(route, n_stream)
            rps, failures = throughput(route, n_burst)
            results["routes"][name].update(
                {
                    "rps_c32": rps,
                    "c32_failures": len(failures),
                    "c32_failure_kinds": sorted(set(failures))[:5],
                    "first_byte_ms": streamed["first_byte_ms"],
                    "stream_chunks": len(streamed["chunks"]),
                    "stream_bytes": b"".join(streamed["chunks"]).decode(),
                }
            )
    reference = results["routes"]["direct"]
    for row in results["routes"].values():
        # Same bytes (ids blanked) and the same number of chunks: nothing buffered or merged.
        # Under heavy load TCP may still coalesce two events on either route.
        row["same_bytes_as_upstream"] = row["stream_bytes"] == reference["stream_bytes"]
        row["same_chunks_as_upstream"] = row["stream_chunks"] == reference["stream_chunks"]
    return results


def report(results: dict[str, Any]) -> str:
    """The Markdown table: c=1 latency on one core and on any core, CPU per call, c=32
    throughput, streaming."""
    direct = results["routes"]["direct"]
    lines = [
        "| route | p50 ms, one core | added p50 ms, one core | added p99 ms, one core | "
        "added p50 ms, any core | added p99 ms, any core | proxy CPU ms/call | "
        "req/s at c=32 | added first SSE byte ms | same SSE bytes, chunks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["routes"].items():
        cpu = row.get("proxy_cpu_ms_per_call_one_core", row["proxy_cpu_ms_per_call"])
        lines.append(
            f"| {name} | {_ms(row.get('p50_one_core_ms'))} | "
            f"{_added(row, direct, 'p50_one_core_ms')} | "
            f"{_added(row, direct, 'p99_one_core_ms')} | "
            f"{_added(row, direct, 'p50_ms')} | {_added(row, direct, 'p99_ms')} | "
            f"{_ms(cpu)} | {row['rps_c32']:.0f}{_failed(row)} | "
            f"{row['first_byte_ms'] - direct['first_byte_ms']:+.2f} | "
            f"{'yes' if row['same_bytes_as_upstream'] else 'NO'}, "
            f"{row['stream_chunks']} chunks |"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _added(row: dict[str, Any], direct: dict[str, Any], field: str) -> str:
    if row.get(field) is None or direct.get(field) is None:
        return "-"
    return f"{row[field] - direct[field]:+.2f}"


def _failed(row: dict[str, Any]) -> str:
    return f" ({row['c32_failures']} failed)" if row["c32_failures"] else ""


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["routes"]
    names = list(rows)
    panels = [("samples", "any core")]
    if all("samples_one_core" in rows[n] for n in names):
        panels.insert(0, ("samples_one_core", "one core"))
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), sharey=True)
    for axis, (field, label) in zip(figure.axes, panels, strict=True):
        axis.boxplot([rows[n][field] for n in names], tick_labels=names, showfliers=False)
        axis.set_title(f"c=1, {label}")
        axis.tick_params(axis="x", labelrotation=15, labelsize=8)
    figure.axes[0].set_ylabel("ms per messages.create (official SDK)")
    upstream = results.get("upstream", "stand-in")
    figure.suptitle(f"Direct call vs the same call through a proxy (loopback, {upstream})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    del axes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="few requests, for CI")
    parser.add_argument("--output", type=Path, help="where to write JSON (default: results/)")
    parser.add_argument("--calls", type=int, help="sequential calls per route (default 1000)")
    parser.add_argument(
        "--upstream",
        choices=("stand-in", "stub"),
        default="stand-in",
        help="the local stand-in (default) or benchmarks/stub_upstream.py, DESIGN.md's setting",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = RESULTS if args.upstream == "stand-in" else RESULTS.with_name("bff-stub.json")
    results = measure(args.short, args.calls, args.upstream)
    table = report(results)
    for row in results["routes"].values():
        row.pop("stream_bytes")
        for field in ("samples", "samples_one_core"):
            if field in row:
                row[field] = [round(s, 3) for s in row[field]]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.output.with_suffix(".png"))
    for row in results["routes"].values():
        row.pop("samples")
        row.pop("samples_one_core", None)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    os.environ.pop("ANTHROPIC_API_KEY", None)
    sys.exit(main())
