"""The API's routes: Messages (plain and streamed), count_tokens and Models."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from patterns.models import CATALOG, find_model
from patterns.upstream.auth import check_version
from patterns.upstream.envelope import UpstreamError
from patterns.upstream.faults import Fault
from patterns.upstream.replies import compose_reply, count_input_tokens
from patterns.upstream.streaming import message_events
from patterns.upstream.validation import parse_json_body, validate_messages_request

if TYPE_CHECKING:
    from patterns.upstream.app import Controls

__all__ = ["router"]

router = APIRouter()

_MAX_PAGE: Final = 1000
_DEFAULT_PAGE: Final = 20


def retry_headers(seconds: float | None) -> dict[str, str]:
    """``retry-after`` in whole seconds, as the API sends it; a fractional wait (handy in
    tests) also goes in ``retry-after-ms``, which the official SDKs read first."""
    if seconds is None:
        return {}
    headers = {"retry-after": str(math.ceil(seconds))}
    if seconds != math.ceil(seconds):
        headers["retry-after-ms"] = str(round(seconds * 1000))
    return headers


def _controls(request: Request) -> Controls:
    controls: Controls = request.app.state.controls
    return controls


async def _admit(
    request: Request, *, streaming: bool = False, key_id: str | None = None
) -> tuple[str, Fault | None]:
    """Authenticate, check the version, then apply a queued fault.

    Returns the key id and a stream fault for the caller to apply later, if one was taken.
    """
    controls = _controls(request)
    if key_id is None:
        key_id = controls.keys.authenticate(request)
    request.state.ratelimit_headers = controls.limiter.peek(key_id, controls.settings.clock())
    check_version(request)
    fault = controls.faults.take(streaming=streaming)
    if fault is not None and fault.kind == "fail":
        raise UpstreamError(fault.status, fault.message, headers=retry_headers(fault.retry_after))
    if fault is not None and fault.kind == "stall":
        await anyio.sleep(fault.seconds)
        fault = None
    return key_id, fault


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _controls(request).settings.max_request_bytes:
        raise UpstreamError(413)
    return parse_json_body(raw)


@router.post("/v1/messages")
async def create_message(request: Request) -> Response:
    controls = _controls(request)
    key_id = controls.keys.authenticate(request)
    body = await _read_body(request)
    streaming = body.get("stream") is True
    key_id, fault = await _admit(request, streaming=streaming, key_id=key_id)
    entry = validate_messages_request(body)
    reply = compose_reply(body)
    headers = controls.limiter.acquire(
        key_id,
        controls.settings.clock(),
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
    )
    message: dict[str, Any] = {
        "id": controls.settings.ids("msg"),
        "type": "message",
        "role": "assistant",
        "model": entry.id,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }
    if not streaming:
        return JSONResponse(message, headers=headers)
    events = message_events(
        message,
        reply,
        delay=controls.settings.stream_delay,
        fault=fault,
        request_id=request.state.request_id,
    )
    headers["cache-control"] = "no-cache"
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    await _admit(request)
    body = await _read_body(request)
    validate_messages_request(body, counting=True)
    return JSONResponse(
        {"input_tokens": count_input_tokens(body)}, headers=request.state.ratelimit_headers
    )


def _page_size(request: Request) -> int:
    raw = request.query_params.get("limit", str(_DEFAULT_PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise UpstreamError(400, "limit: Input should be between 1 and 1000")
    return int(raw)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    """Newest first, paged with ``after_id`` / ``before_id`` like the real list endpoints."""
    await _admit(request)
    wanted = set(request.query_params.getlist("lifecycle[]")) | set(
        request.query_params.getlist("lifecycle")
    )
    lifecycles = wanted or {"active", "deprecated"}
    models = [entry for entry in CATALOG if entry.lifecycle in lifecycles]
    ids = [entry.id for entry in models]
    limit = _page_size(request)
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    for cursor in (after, before):
        if cursor is not None and cursor not in ids:
            raise UpstreamError(400, "Invalid pagination cursor.")
    if before is not None:
        end = ids.index(before)
        page, has_more = models[max(0, end - limit) : end], end - limit > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        page, has_more = models[start : start + limit], start + limit < len(models)
    body = {
        "data": [entry.to_api() for entry in page],
        "has_more": has_more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }
    return JSONResponse(body, headers=request.state.ratelimit_headers)


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, request: Request) -> Response:
    await _admit(request)
    entry = find_model(model_id)
    if entry is None:
        raise UpstreamError(404, f"model: {model_id[:100]}")
    return JSONResponse(entry.to_api(), headers=request.state.ratelimit_headers)
