"""What every answer of the token proxy carries: a request id, ``cache-control: no-store``,
RFC 3339 times and the Anthropic error envelope (so the SDK raises its usual exceptions).
Shared by the message routes (:mod:`patterns.tokens.proxy`) and the issuer routes
(:mod:`patterns.tokens.issuer`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Final

from fastapi import Response

from patterns.upstream.envelope import UpstreamError, error_json

__all__ = ["NO_STORE", "error_response", "new_request_id", "refusal", "rfc3339"]

NO_STORE: Final = {"cache-control": "no-store"}


def new_request_id() -> str:
    return "req_proxy_" + secrets.token_hex(12)


def refusal(status: int, message: str) -> UpstreamError:
    """An error answer whose request id is fixed now, so the audit event can carry it."""
    return UpstreamError(status, message, headers={"request-id": new_request_id()})


def error_response(status: int, message: str, request_id: str | None = None) -> Response:
    rid = request_id or new_request_id()
    body = error_json(UpstreamError(status, message), rid)
    headers = {"request-id": rid, **NO_STORE}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
