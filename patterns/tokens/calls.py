"""The token proxy's audit of one call: what its event says, and the usage read on the way.

Kept apart from :mod:`patterns.tokens.proxy` so the proxy module stays about forwarding. The
event names and fields follow :mod:`patterns.audit` (the BFF's shape where they overlap).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from patterns.audit import AuditTrail
from patterns.bff.proxy import UsageScanner, usage_of
from patterns.errors import StoreUnavailable
from patterns.tokens.model import Grant
from patterns.upstream.envelope import UpstreamError

__all__ = ["STORE_DOWN", "CallRecord", "TokenRefusal", "UsageReader", "audited_refusal"]

STORE_DOWN: Final = "the token service is unavailable; try again shortly"

_USAGE_BODY_LIMIT: Final = 1024 * 1024  # a JSON answer larger than this is not parsed for usage


class TokenRefusal(Exception):
    """A token refused (401 or 403), with the reason for the audit log (never for the client)."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


@dataclass(slots=True)
class CallRecord:
    """What the audit event of one proxied call says, filled in as the call proceeds."""

    path: str
    started: float
    grant: Grant | None = None
    fingerprint: str | None = None
    model: str | None = None
    stream: bool = False

    def fields(self) -> dict[str, Any]:
        grant = self.grant
        return {
            "user": grant.user_id if grant else None,
            "token_id": grant.token_id if grant else None,
            "key_ref": grant.key_ref if grant else None,
            "key_fingerprint": self.fingerprint,
            "model": self.model,
        }

    def latency_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)


class UsageReader:
    """Token counts from an answer on its way through: SSE events or a JSON body."""

    def __init__(self, content_type: str) -> None:
        self._sse = UsageScanner() if "text/event-stream" in content_type else None
        self._json = "json" in content_type
        self._body: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if self._sse is not None:
            self._sse.feed(chunk)
        elif self._json and self._size <= _USAGE_BODY_LIMIT:
            self._size += len(chunk)
            self._body.append(chunk)

    def tokens(self) -> tuple[int, int]:
        if self._sse is not None:
            return self._sse.input_tokens, self._sse.output_tokens
        if not self._json or self._size > _USAGE_BODY_LIMIT:
            return 0, 0
        try:
            body = json.loads(b"".join(self._body))
            return usage_of(body) if isinstance(body, dict) else (0, 0)
        except (ValueError, TypeError):
            return 0, 0


def audited_refusal(
    trail: AuditTrail,
    call: CallRecord,
    error: TokenRefusal | UpstreamError | StoreUnavailable,
    new_id: Callable[[], str],
) -> UpstreamError:
    """Write the refusal's event and return the answer to raise, whose ``request-id`` is the
    one in the event: ``token_refused`` (401/403, with the reason) for a token, else
    ``request_refused`` (a bad body, an unreachable upstream, the token store down)."""
    if isinstance(error, TokenRefusal):
        answer = UpstreamError(error.status, error.message, headers={"request-id": new_id()})
        trail.record(
            "token_refused",
            reason=error.reason,
            **call.fields(),
            status=error.status,
            request_id=answer.headers["request-id"],
        )
        return answer
    if isinstance(error, StoreUnavailable):
        answer = UpstreamError(500, STORE_DOWN, headers={"request-id": new_id()})
        reason: str | None = "token store unavailable"
    else:
        rid = error.headers.get("request-id") or new_id()
        answer = UpstreamError(
            error.status, error.message, headers={**error.headers, "request-id": rid}
        )
        reason = None
    trail.record(
        "request_refused",
        reason=reason,
        **call.fields(),
        status=answer.status,
        latency_ms=call.latency_ms(),
        request_id=answer.headers["request-id"],
    )
    return answer
