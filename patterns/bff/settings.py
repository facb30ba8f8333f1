"""What a backend-for-frontend needs to know, with safe defaults for every field.

One frozen dataclass, validated at construction: a BFF that starts with a model it cannot
serve, a cap of zero or a cookie that is not ``Secure`` fails at start-up, not at the first
request. The stores (memory or Redis) are chosen separately, see :mod:`patterns.bff.stores`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from patterns.errors import ConfigurationError
from patterns.kms.protocol import require_tls
from patterns.models import default_model, find_model
from patterns.session_keys import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT
from patterns.upstream.ids import IdFactory

__all__ = ["COOKIE_NAME", "BffSettings", "Defences", "RateLimit", "request_id"]

#: ``__Host-`` makes the browser refuse the cookie unless it is ``Secure``, has ``Path=/``
#: and no ``Domain``: a sibling subdomain cannot plant or overwrite it.
COOKIE_NAME: Final = "__Host-session"


def request_id(prefix: str) -> str:
    """``req_bff_`` + 128 random bits: one ``token_urlsafe`` call (an id per request)."""
    return f"{prefix}_bff_{secrets.token_urlsafe(16)}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``burst`` calls at once and ``per_minute`` a minute in the long run: a moving
    window of ``burst`` calls per ``burst * 60 / per_minute`` s (see patterns.bff.ratelimit)."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ConfigurationError("RateLimit needs per_minute > 0 and burst >= 1")

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True, slots=True)
class Defences:
    """Each defence of the BFF, all on. Turning one off exists for notebook 05's lab only,
    where a widget shows which attack succeeds without it; never turn one off in an app."""

    http_only_cookie: bool = True
    csrf_token: bool = True
    origin_check: bool = True
    server_side_logout: bool = True
    request_validation: bool = True
    rate_limit: bool = True

    @property
    def all_on(self) -> bool:
        return all(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class BffSettings:
    """Settings of :func:`patterns.bff.create_app`.

    ``allowed_origins`` lists origins besides the BFF's own (a browser's ``Origin`` must be
    one of them on every state-changing request). ``clock`` is wall-clock seconds: sessions
    are shared by processes through Redis, so a monotonic clock (which is per machine) would
    not do; rate limits keep the limits library's own wall clock, not this one.
    ``key_cache_seconds`` keeps an unsealed key in this process for at most that long, keyed
    by the sealed value, so a deleted key is never used again but a busy user does not cost
    a KMS call per message (0 turns the cache off).
    """

    upstream_url: str
    allowed_models: tuple[str, ...] = field(default_factory=lambda: (default_model(),))
    max_tokens_cap: int = 4096
    max_body_bytes: int = 256 * 1024
    allowed_origins: tuple[str, ...] = ()
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    absolute_timeout: float = DEFAULT_ABSOLUTE_TIMEOUT
    message_limit: RateLimit = field(default_factory=lambda: RateLimit(30, 10))
    login_limit: RateLimit = field(default_factory=lambda: RateLimit(10, 5))  # per user and IP
    login_ip_limit: RateLimit = field(default_factory=lambda: RateLimit(30, 10))  # per IP
    key_write_limit: RateLimit = field(default_factory=lambda: RateLimit(20, 10))  # KMS seals
    max_concurrent_logins: int = 4  # Argon2id at 19 MiB each: bound memory and CPU
    allow_insecure_upstream: bool = False  # plain http beyond loopback: a network you trust
    token_budget: int | None = None
    key_cache_seconds: float = 60.0
    upstream_timeout: float = 600.0
    max_connections: int = 64
    anthropic_version: str = "2023-06-01"
    defences: Defences = field(default_factory=Defences)
    clock: Callable[[], float] = time.time
    ids: IdFactory = request_id
    audit_size: int = 1000

    def __post_init__(self) -> None:
        if not self.upstream_url.startswith(("http://", "https://")):
            raise ConfigurationError("upstream_url must be an http(s) URL")
        require_tls(
            self.upstream_url,
            service="the upstream API",
            allow_insecure=self.allow_insecure_upstream,
            exposes="every user's API key",
        )
        if not 1 <= self.max_concurrent_logins <= 64:
            raise ConfigurationError("max_concurrent_logins must be between 1 and 64")
        if not self.allowed_models:
            raise ConfigurationError("allowed_models must name at least one model")
        for model in self.allowed_models:
            entry = find_model(model)
            if entry is None or not entry.usable:
                raise ConfigurationError(
                    f"allowed_models: {model!r} is not a usable model id in patterns.models; "
                    "a retired or misspelt id would only ever answer 404"
                )
        if not 1 <= self.max_tokens_cap <= 128_000:
            raise ConfigurationError("max_tokens_cap must be between 1 and 128000")
        if not 1024 <= self.max_body_bytes <= 32 * 1024 * 1024:
            raise ConfigurationError("max_body_bytes must be between 1 KiB and 32 MiB")
        if not 0 < self.idle_timeout <= self.absolute_timeout:
            raise ConfigurationError("need 0 < idle_timeout <= absolute_timeout")
        if self.token_budget is not None and self.token_budget < 1:
            raise ConfigurationError("token_budget must be at least 1 (or None for no budget)")
        if self.key_cache_seconds < 0 or self.key_cache_seconds > 3600:
            raise ConfigurationError("key_cache_seconds must be between 0 and 3600")
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ConfigurationError(
                    f"allowed_origins: {origin!r} must look like https://app.example.com"
                )
