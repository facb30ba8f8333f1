"""Reading a request the way the token proxy must before it spends a use: bounded, strict,
and limited to what the operator allows. Kept apart from the routes so each rule is small
and testable."""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import Request

from patterns.upstream.envelope import UpstreamError

__all__ = [
    "DEFAULT_ALLOWED_FIELDS",
    "checked_betas",
    "parse_strict",
    "read_capped",
    "scope_of",
]

#: Body fields a token holder may send: the Messages API's core. Anything else (server tools,
#: MCP servers, containers, files, service tiers) would spend or reach the organisation's
#: resources under its key, so the operator must allow it explicitly.
DEFAULT_ALLOWED_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
    }
)


async def read_capped(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` bytes: a chunked upload
    declares no length, and buffering it whole first would let anyone exhaust memory."""
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamError(413, "request body too large for this proxy")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UpstreamError(413, "request body too large for this proxy")
        chunks.append(chunk)
    return b"".join(chunks)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_strict(body: bytes) -> dict[str, Any]:
    """Parse as the scope check must: strict UTF-8, no duplicate keys, no NaN/Infinity.

    A parser that keeps the last duplicate (Python's) and one that keeps the first could
    otherwise see different models in the same bytes; forwarding the re-serialised object
    (not the original bytes) makes the checked request the one that is sent.
    """
    try:
        payload = json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constants
        )
    except ValueError:  # also UnicodeDecodeError
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamError(400, "the body must be one JSON object (UTF-8, no duplicate keys)")
    return payload


def checked_betas(
    request: Request,
    payload: dict[str, Any],
    allowed_fields: frozenset[str],
    allowed_betas: frozenset[str],
) -> list[str]:
    """Refuse body fields and beta flags the operator has not allowed (before redeeming, so
    a refused request costs no use); return the allowed beta flags to forward."""
    extra = sorted(set(payload) - allowed_fields)
    if extra:
        raise UpstreamError(400, f"{', '.join(extra)}: not allowed through this proxy")
    betas = [
        value.strip()
        for header in request.headers.getlist("anthropic-beta")
        for value in header.split(",")
        if value.strip()
    ]
    refused = sorted(set(betas) - allowed_betas)
    if refused:
        raise UpstreamError(
            400, f"anthropic-beta {', '.join(refused)}: not allowed through this proxy"
        )
    return betas


def scope_of(payload: dict[str, Any], *, generates: bool) -> tuple[str | None, int | None]:
    """The model and max_tokens a request asks for, as the token's scope check needs them."""
    model = payload.get("model")
    max_tokens = payload.get("max_tokens") if generates else None
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise UpstreamError(400, "max_tokens: must be an integer")
    return (model if isinstance(model, str) else None), max_tokens
