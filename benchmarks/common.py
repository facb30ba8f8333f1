"""What the benchmarks share: server processes, a throwaway redis-server, percentiles.

Each server runs as its own ``python -m patterns serve ...`` process (as in production: the
client, the proxy and the API do not share an interpreter). :class:`Child` also reads the
process's CPU time from ``/proc``, so a benchmark can report what one call costs the proxy
itself, a figure far steadier on a shared machine than wall-clock latency.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from patterns.serving import free_port

__all__ = ["Child", "one_core", "percentile", "process", "redis_server", "server"]


@dataclass(frozen=True, slots=True)
class Child:
    """A running server process: the URL it announced and its pid."""

    url: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by all the process's threads (None without ``/proc``).

        From the scheduler's own count (``schedstat``, nanoseconds), not ``utime``: on a busy
        machine tick-sampled ``utime`` badly misattributes a process that runs in 1 ms bursts.
        """
        total = 0
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return total / 1e9


@contextmanager
def one_core(pids: list[int]) -> Iterator[int | None]:
    """Run ``pids`` and this process (every thread of each) on one CPU, then restore.

    At concurrency 1 only one of the client, the proxy and the upstream runs at a time, so
    one core is enough; what pinning removes is the cross-CPU wake-up each hop otherwise
    pays when the scheduler puts the sender and the receiver on different cores (an
    inter-processor interrupt, dear on a VM, and different from call to call). Yields the
    CPU used, or None where the platform cannot pin (then nothing changes).
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    everyone = [os.getpid(), *pids]
    before = {pid: os.sched_getaffinity(pid) for pid in everyone}
    cpu = max(before[os.getpid()])
    try:
        for pid in everyone:
            _set_affinity(pid, {cpu})
        yield cpu
    finally:
        for pid, cpus in before.items():
            _set_affinity(pid, cpus)


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (affinity is per thread; new threads inherit it)."""
    try:
        tasks = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tasks = [pid]
    for tid in tasks:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that has just ended
            continue


@contextmanager
def server(command: list[str], env: dict[str, str] | None = None) -> Iterator[Child]:
    """Start ``python <command>`` (a ``-m patterns serve ...`` or a script) and wait for
    its ``... on http://host:port`` line."""
    child = subprocess.Popen(
        [sys.executable, *command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline().strip()
        if " on http://" not in first:
            raise RuntimeError(f"server did not start: {first!r}")
        yield Child(first.rsplit(" ", 1)[1], child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)


@contextmanager
def process(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a ``python -m patterns serve ...`` process; yield the URL it announces."""
    with server(["-m", "patterns", *command], env) as child:
        yield child.url


@contextmanager
def redis_server() -> Iterator[Child | None]:
    """A redis-server on a free loopback port, no persistence; None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    import redis

    port = free_port()
    child = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:  # not up yet
            time.sleep(0.05)
    try:
        yield Child(url, child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile by rank (no interpolation): p99 of 1,000 samples is the 991st."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
