"""The app factory: ``create_app(settings)`` returns the stand-in as a FastAPI app."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from patterns.upstream.admin import admin_router
from patterns.upstream.auth import KeyRing
from patterns.upstream.envelope import ERROR_TYPES, UpstreamError, error_body
from patterns.upstream.faults import FaultInjector
from patterns.upstream.middleware import StandInMiddleware
from patterns.upstream.ratelimit import RateLimiter
from patterns.upstream.requestlog import RequestLog
from patterns.upstream.routes import router
from patterns.upstream.settings import UpstreamSettings

__all__ = ["Controls", "controls_of", "create_app"]


@dataclass(frozen=True, slots=True)
class Controls:
    """The stand-in's moving parts, for tests and notebooks to steer and inspect."""

    settings: UpstreamSettings
    keys: KeyRing
    faults: FaultInjector
    request_log: RequestLog
    limiter: RateLimiter


def _error_response(request: Request, error: UpstreamError) -> Response:
    headers = dict(getattr(request.state, "ratelimit_headers", {}) or {})
    headers.update(error.headers)
    headers.setdefault("x-should-retry", "true" if error.status in {429, 500, 529} else "false")
    request_id = getattr(request.state, "request_id", "")
    return JSONResponse(error_body(error, request_id), status_code=error.status, headers=headers)


def create_app(settings: UpstreamSettings | None = None) -> FastAPI:
    """Build the stand-in. ``controls_of(app)`` gives its fault injector, log and limiter."""
    settings = settings or UpstreamSettings()
    controls = Controls(
        settings=settings,
        keys=KeyRing(settings.accepted_keys),
        faults=FaultInjector(),
        request_log=RequestLog(
            settings.request_log_size, capture_credentials=settings.capture_credentials
        ),
        limiter=RateLimiter(settings.limits),
    )
    app = FastAPI(title="Anthropic API stand-in", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.controls = controls
    app.include_router(router)
    if settings.admin_enabled:
        app.include_router(admin_router)

    async def on_upstream_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, UpstreamError)
        return _error_response(request, error)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code if error.status_code in ERROR_TYPES else 404
        return _error_response(request, UpstreamError(status))

    async def on_unexpected(request: Request, error: Exception) -> Response:
        return _error_response(request, UpstreamError(500))

    app.add_exception_handler(UpstreamError, on_upstream_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(StandInMiddleware, controls=controls)
    return app


def controls_of(app: FastAPI) -> Controls:
    """The :class:`Controls` of an app made by :func:`create_app`."""
    controls: Controls = app.state.controls
    return controls
