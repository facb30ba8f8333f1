"""Configuration of the stand-in: which keys it accepts, its limits, its pace and its clock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from patterns.errors import ConfigurationError
from patterns.keys import ApiKey, demo_key
from patterns.upstream.ids import IdFactory, random_id

__all__ = [
    "DEFAULT_KEY_LABEL",
    "KEYS_ENVIRONMENT_VARIABLE",
    "KNOWN_API_VERSIONS",
    "RateLimits",
    "UpstreamSettings",
    "keys_from_environment",
]

#: Comma-separated keys the stand-in accepts when none are given on the command line.
KEYS_ENVIRONMENT_VARIABLE: Final = "PATTERNS_UPSTREAM_KEYS"

#: With no key configured, the stand-in accepts ``demo_key(DEFAULT_KEY_LABEL)``.
DEFAULT_KEY_LABEL: Final = "upstream"

#: ``anthropic-version`` values accepted. 2023-06-01 is the version the API documentation
#: and browsers use; 2026-10-21 is what the installed SDK (anthropic 2.14) sends.
KNOWN_API_VERSIONS: Final = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})

#: The real Messages API refuses bodies over 32 MB with 413 request_too_large.
MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-key limits, replenished continuously like the real API's token buckets."""

    requests_per_minute: int = 50
    input_tokens_per_minute: int = 30_000
    output_tokens_per_minute: int = 8_000

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"RateLimits.{name} must be at least 1")


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """Everything :func:`patterns.upstream.create_app` needs. All fields have safe defaults.

    ``clock`` returns wall-clock seconds since the epoch (the rate-limit ``reset`` headers are
    timestamps); pass a fake one to make headers and refills reproducible. ``ids`` makes
    request and message ids (see :class:`~patterns.upstream.ids.SequentialIds`).
    ``capture_credentials`` keeps the keys that arrive, in memory only, for the request log's
    attacker's view; turn it off when the view is not needed.
    """

    api_keys: tuple[ApiKey, ...] = ()
    limits: RateLimits = field(default_factory=RateLimits)
    stream_delay: float = 0.0
    clock: Callable[[], float] = time.time
    ids: IdFactory = random_id
    admin_enabled: bool = False
    max_request_bytes: int = MAX_REQUEST_BYTES
    request_log_size: int = 200
    capture_credentials: bool = True

    def __post_init__(self) -> None:
        if self.stream_delay < 0 or self.stream_delay > 10:
            raise ConfigurationError("stream_delay must be between 0 and 10 seconds")
        if self.max_request_bytes < 1024:
            raise ConfigurationError("max_request_bytes must be at least 1024")
        if self.request_log_size < 1:
            raise ConfigurationError("request_log_size must be at least 1")

    @property
    def accepted_keys(self) -> tuple[ApiKey, ...]:
        """The configured keys, or the default demo key when none are configured."""
        return self.api_keys or (demo_key(DEFAULT_KEY_LABEL),)


def keys_from_environment(values: Iterable[str] = ()) -> tuple[ApiKey, ...]:
    """Keys given explicitly, else from ``$PATTERNS_UPSTREAM_KEYS`` (comma separated)."""
    given = [value for value in values if value.strip()]
    if not given:
        given = [v for v in os.environ.get(KEYS_ENVIRONMENT_VARIABLE, "").split(",") if v.strip()]
    return tuple(ApiKey(value) for value in given)
