"""Admin routes (``/_stand-in/...``): fault injection and the redacted request log over HTTP.

Off unless ``UpstreamSettings.admin_enabled`` (``serve upstream --admin``), and answered only
to loopback clients, because they let anyone who can reach them disturb the stand-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from patterns.errors import ConfigurationError
from patterns.upstream.envelope import UpstreamError
from patterns.upstream.validation import parse_json_body

if TYPE_CHECKING:
    from patterns.upstream.app import Controls

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/_stand-in")

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _controls(request: Request) -> Controls:
    if request.client is None or request.client.host not in _LOOPBACK:
        raise UpstreamError(403, "The stand-in's admin routes answer loopback clients only.")
    # A web page the developer visits is a loopback client too: refuse a Host that is not a
    # loopback name (DNS rebinding) and, for changes, anything but JSON (a cross-site form
    # or a text/plain "simple request" cannot send application/json without a preflight).
    host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
    if host not in _LOOPBACK:
        raise UpstreamError(403, "The stand-in's admin routes answer loopback host names only.")
    if request.method != "GET":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and content_type != "application/json":
            raise UpstreamError(400, "The stand-in's admin routes take application/json bodies.")
        if request.headers.get("origin") or request.headers.get("sec-fetch-site") == "cross-site":
            raise UpstreamError(403, "The stand-in's admin routes refuse cross-origin requests.")
    controls: Controls = request.app.state.controls
    return controls


@admin_router.get("/faults")
async def list_faults(request: Request) -> Response:
    return JSONResponse({"pending": _controls(request).faults.pending()})


@admin_router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    _controls(request).faults.clear()
    return JSONResponse({"pending": []})


@admin_router.post("/faults")
async def add_fault(request: Request) -> Response:
    """Body: ``{"kind": "fail", "status": 529, "count": 2, "retry_after": 1}``, or kind
    ``stall`` (``seconds``), ``drop_stream`` / ``error_stream`` (``after_events``)."""
    faults = _controls(request).faults
    spec: dict[str, Any] = parse_json_body(await request.body())
    kind = spec.get("kind")
    count = int(spec.get("count", 1))
    try:
        if kind == "fail":
            faults.fail_next(
                int(spec.get("status", 529)), count, retry_after=spec.get("retry_after")
            )
        elif kind == "stall":
            faults.stall_next(float(spec.get("seconds", 1.0)), count)
        elif kind == "drop_stream":
            faults.drop_stream_next(int(spec.get("after_events", 3)), count)
        elif kind == "error_stream":
            faults.error_stream_next(
                int(spec.get("status", 529)), int(spec.get("after_events", 3)), count
            )
        else:
            raise UpstreamError(
                400, "kind: Input should be 'fail', 'stall', 'drop_stream' or 'error_stream'"
            )
    except (ConfigurationError, TypeError, ValueError) as error:
        raise UpstreamError(400, str(error)) from None
    return JSONResponse({"pending": faults.pending()})


@admin_router.get("/requests")
async def request_log(request: Request) -> Response:
    """The redacted log, newest last."""
    records = _controls(request).request_log.entries()
    rows = [
        {
            "request_id": r.request_id,
            "method": r.method,
            "path": r.path,
            "status": r.status,
            "body_bytes": r.body_bytes,
            "headers": dict(r.headers),
        }
        for r in records
    ]
    return JSONResponse({"requests": rows})
