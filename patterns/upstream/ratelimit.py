"""Per-key rate limits as token buckets, with the real API's response headers.

The Anthropic API measures requests, input tokens and output tokens per minute with buckets
that refill continuously (not a fixed window that resets on the minute), reports each in
``anthropic-ratelimit-*`` headers, and answers 429 with ``retry-after`` when a bucket is
short. Written here rather than taken from a library because the buckets must run on an
injected clock (reproducible headers in notebooks, no sleeping in tests) and must report
the exact moment each bucket is full again, which the ``reset`` headers need.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from patterns.upstream.envelope import UpstreamError
from patterns.upstream.settings import RateLimits

__all__ = ["Bucket", "RateLimiter", "rate_limit_headers"]

_MINUTE: Final = 60.0
_PREFIX: Final = "anthropic-ratelimit-"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Bucket:
    """A bucket of ``capacity`` units refilled at ``capacity`` per minute."""

    capacity: int
    level: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(float(self.capacity), self.level + elapsed * self.capacity / _MINUTE)
        self.updated = now

    def seconds_until(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (0 when it already does)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * _MINUTE / self.capacity

    def full_at(self, now: float) -> float:
        return now + self.seconds_until(self.capacity)

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.level))


_KINDS: Final = ("requests", "input-tokens", "output-tokens")
_LIMIT_MESSAGES: Final = {
    "requests": "This request would exceed the rate limit for your organization of {limit} "
    "requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
    "You can see the response headers for current usage.",
    "input-tokens": "This request would exceed the rate limit for your organization of {limit} "
    "input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
    " You can see the response headers for current usage. Please reduce the prompt length or "
    "try again later.",
    "output-tokens": "This request would exceed the rate limit for your organization of {limit} "
    "output tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits"
    ". You can see the response headers for current usage. Please reduce max_tokens or try "
    "again later.",
}


def rate_limit_headers(buckets: dict[str, Bucket], now: float) -> dict[str, str]:
    """The ``anthropic-ratelimit-*`` headers for a key's buckets at ``now``.

    ``tokens-*`` reports the more restrictive of the input and output buckets, as the real
    API does.
    """
    headers: dict[str, str] = {}
    for kind in _KINDS:
        bucket = buckets[kind]
        headers[f"{_PREFIX}{kind}-limit"] = str(bucket.capacity)
        headers[f"{_PREFIX}{kind}-remaining"] = str(bucket.remaining)
        headers[f"{_PREFIX}{kind}-reset"] = _rfc3339(bucket.full_at(now))
    tighter = min(("input-tokens", "output-tokens"), key=lambda k: buckets[k].remaining)
    for part in ("limit", "remaining", "reset"):
        headers[f"{_PREFIX}tokens-{part}"] = headers[f"{_PREFIX}{tighter}-{part}"]
    return headers


class RateLimiter:
    """Buckets per key fingerprint (never per key: the limiter holds no secrets)."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self._buckets: dict[str, dict[str, Bucket]] = {}
        self._lock = threading.Lock()

    def _for(self, key_id: str, now: float) -> dict[str, Bucket]:
        buckets = self._buckets.get(key_id)
        if buckets is None:
            capacities = {
                "requests": self._limits.requests_per_minute,
                "input-tokens": self._limits.input_tokens_per_minute,
                "output-tokens": self._limits.output_tokens_per_minute,
            }
            buckets = {k: Bucket(c, float(c), now) for k, c in capacities.items()}
            self._buckets[key_id] = buckets
        for bucket in buckets.values():
            bucket.refill(now)
        return buckets

    def acquire(
        self, key_id: str, now: float, *, input_tokens: int, output_tokens: int
    ) -> dict[str, str]:
        """Take one request and the tokens from the key's buckets and return the headers.

        Raises a 429 :class:`UpstreamError` (with ``retry-after`` in whole seconds and the
        current headers) and takes nothing when any bucket is short.
        """
        costs = {"requests": 1, "input-tokens": input_tokens, "output-tokens": output_tokens}
        with self._lock:
            buckets = self._for(key_id, now)
            for kind in _KINDS:
                bucket = buckets[kind]
                if costs[kind] > bucket.capacity:
                    raise UpstreamError(
                        429,
                        _LIMIT_MESSAGES[kind].format(limit=bucket.capacity),
                        headers={**rate_limit_headers(buckets, now), "retry-after": "60"},
                    )
                wait = bucket.seconds_until(costs[kind])
                if wait > 0:
                    headers = rate_limit_headers(buckets, now)
                    headers["retry-after"] = str(max(1, math.ceil(wait)))
                    raise UpstreamError(
                        429, _LIMIT_MESSAGES[kind].format(limit=bucket.capacity), headers=headers
                    )
            for kind in _KINDS:
                buckets[kind].level -= costs[kind]
            return rate_limit_headers(buckets, now)

    def peek(self, key_id: str, now: float) -> dict[str, str]:
        """The headers for a key without taking anything (used on error answers)."""
        with self._lock:
            return rate_limit_headers(self._for(key_id, now), now)
