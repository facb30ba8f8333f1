"""``create_app(settings)``: the backend-for-frontend as a FastAPI app.

The browser holds one HttpOnly session cookie; the user's Anthropic key is sealed in the key
vault and only ever leaves the server towards the API. See :mod:`patterns.bff` for the map.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.bff import counting, messages, routes
from patterns.bff.context import Bff
from patterns.bff.monitoring import AnomalyDetector, AuditTrail
from patterns.bff.passwords import UserDirectory
from patterns.bff.pool import UpstreamPool
from patterns.bff.proxy import HttpxUpstream, Upstream
from patterns.bff.security import SECURITY_HEADERS, BodyLimit, SecurityHeaders
from patterns.bff.settings import BffSettings
from patterns.bff.stores import Stores, memory_stores
from patterns.bff.vault import KeyVault, ephemeral_kms
from patterns.errors import DecryptionError, KmsError, StoreUnavailable
from patterns.kms import Kms
from patterns.upstream.envelope import ERROR_TYPES, UpstreamError, error_body

__all__ = ["BffApp", "create_app"]

log = logging.getLogger("patterns.bff")


def _envelope(
    request: Request, status: int, error_type: str, message: str, headers: dict[str, str]
) -> Response:
    """The Anthropic error envelope with this BFF's request id (never a stack trace)."""
    rid = getattr(request.state, "request_id", None) or request.app.state.bff.request_id()
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": rid}
    return JSONResponse(body, status_code=status, headers={"request-id": rid, **headers})


def _install_error_handlers(app: FastAPI) -> None:
    async def on_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, UpstreamError)
        body = error_body(error, "")["error"]
        assert isinstance(body, dict)
        return _envelope(request, error.status, body["type"], body["message"], error.headers)

    async def on_validation(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) for e in error.errors()})
        message = f"invalid request: check {', '.join(f for f in fields if f) or 'the body'}"
        return _envelope(request, 400, "invalid_request_error", message, {})

    async def on_store_down(request: Request, error: Exception) -> Response:
        log.error("refusing a request: %s", error)
        message = "the session store is unavailable; nothing was done, try again shortly"
        return _envelope(request, 503, "api_error", message, {"retry-after": "5"})

    async def on_kms_down(request: Request, error: Exception) -> Response:
        log.error("refusing a request: the KMS failed (%s)", type(error).__name__)
        message = "the key service is unavailable; nothing was sent, try again shortly"
        return _envelope(request, 503, "api_error", message, {"retry-after": "5"})

    async def on_unopenable(request: Request, error: Exception) -> Response:
        message = "your stored key could not be opened; save it again with PUT /keys/anthropic"
        return _envelope(request, 400, "invalid_request_error", message, {})

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code if error.status_code in ERROR_TYPES else 404
        refusal = UpstreamError(status)
        return _envelope(request, status, refusal.error_type, refusal.message, {})

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.error("unexpected %s", type(error).__name__)
        # This handler runs outside SecurityHeaders (in Starlette's ServerErrorMiddleware),
        # so the response carries its own cache and security headers.
        headers = {
            k.decode(): v.decode() for k, v in (*SECURITY_HEADERS, (b"cache-control", b"no-store"))
        }
        return _envelope(request, 500, "api_error", "internal error; nothing was sent", headers)

    app.add_exception_handler(UpstreamError, on_refusal)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StoreUnavailable, on_store_down)
    app.add_exception_handler(KmsError, on_kms_down)
    app.add_exception_handler(DecryptionError, on_unopenable)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


class BffApp(FastAPI):
    """FastAPI, with the one hot route, ``POST /claude/messages``, served from the top.

    FastAPI's routing and dependency layers cost more CPU per call than the whole message
    handler (route matching alone walks every route with its telemetry and scope
    bookkeeping; see docs/benchmarks.md), so this route is dispatched before them. Nothing it
    relied on is skipped: :class:`SecurityHeaders` and :class:`BodyLimit` wrap it exactly as
    they wrap every route, its refusals go to the app's own exception handlers, and an
    unexpected error gets the same 500 envelope, outside the security-header layer, as
    Starlette's error middleware gives it. Every other path goes through FastAPI unchanged.

    The shortcut only holds while the app's middleware is exactly what :func:`create_app`
    installed. Middleware added afterwards (``add_middleware``, ``@app.middleware``: a
    trusted-host check, an IP allowlist, tracing) must see this route too, so with any of it
    the route is served through FastAPI like every other (same handler, same checks).
    """

    messages_app: ASGIApp | None = None  # set by create_app
    own_middleware: tuple[object, ...] = ()  # what create_app added, in order

    def _shortcut(self) -> ASGIApp | None:
        """The fast route, or None once anyone else has added middleware. Starlette refuses
        ``add_middleware`` after start-up, so the answer cannot change while serving."""
        if tuple(self.user_middleware) != self.own_middleware:
            return None
        return self.messages_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self._shortcut() if scope["type"] == "http" else None
        if fast is not None and scope["method"] == "POST" and scope["path"] in messages.PATHS:
            scope["app"] = self
            await self._serve_messages(fast, scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _serve_messages(
        self, fast: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await fast(scope, receive, watched)
        except Exception as error:
            if started:  # as Starlette does: the status line is gone, close the connection
                raise
            unexpected: Any = self.exception_handlers[Exception]
            response = await unexpected(Request(scope), error)
            await response(scope, receive, send)

    async def handle_messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route itself, between the security layers; refusals become envelopes."""
        request = Request(scope, receive)
        try:
            response = await messages.handle(request)
        except Exception as error:
            handler = _handler_for(self, error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)


def _handler_for(app: FastAPI, error: Exception) -> Any:
    """The app's handler for ``error``'s class or nearest base (not the catch-all)."""
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None


def _upstream_for(settings: BffSettings, transport: httpx.AsyncBaseTransport | None) -> Upstream:
    """One shared connection pool to the upstream for the app's lifetime.

    The lean :class:`~patterns.bff.proxy.UpstreamPool` by default (about 1.3 ms of CPU less
    per call than ``httpx.AsyncClient``, see docs/benchmarks.md); httpx when a transport is
    injected (tests) or an environment proxy (``HTTPS_PROXY``, ``ALL_PROXY``) applies to the
    upstream, since the lean pool speaks to the origin directly and only to it.
    """
    if transport is None and not _environment_proxy(settings.upstream_url):
        return UpstreamPool(
            settings.upstream_url,
            max_connections=settings.max_connections,
            connect_timeout=10.0,
            read_timeout=settings.upstream_timeout,
        )
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    # A shared client must not keep cookies: one user's upstream Set-Cookie (a load
    # balancer's, say) would ride along on every other user's requests.
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    client = httpx.AsyncClient(
        base_url=settings.upstream_url,
        transport=transport,
        cookies=no_cookies,
        timeout=httpx.Timeout(settings.upstream_timeout, connect=10.0),
        limits=limits,
    )
    return HttpxUpstream(client)


def _environment_proxy(url: str) -> bool:
    """Whether httpx would route ``url`` through a proxy named in the environment."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.netloc)


def create_app(
    settings: BffSettings,
    *,
    users: UserDirectory | None = None,
    stores: Stores | None = None,
    kms: Kms | None = None,
    kms_key_id: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> BffApp:
    """Build the BFF. Defaults: no users, memory stores, an ephemeral LocalKms.

    ``stores`` comes from :func:`~patterns.bff.stores.memory_stores` or
    :func:`~patterns.bff.redis_stores.redis_stores`; ``kms`` and ``kms_key_id`` name the
    customer key that seals users' keys (Vault or AWS in production); ``transport`` replaces
    the HTTP transport to the upstream.
    """
    if kms is None:
        kms, kms_key_id = ephemeral_kms()
    elif kms_key_id is None:
        raise ValueError("pass kms_key_id with kms: the customer key that seals users' keys")
    stores = stores or memory_stores(settings.idle_timeout, settings.absolute_timeout)
    audit = AuditTrail(settings.audit_size, clock=settings.clock)
    bff = Bff(
        settings=settings,
        users=users or UserDirectory(),
        stores=stores,
        vault=KeyVault(
            stores.keys,
            kms,
            kms_key_id,
            cache_seconds=settings.key_cache_seconds,
            clock=settings.clock,
        ),
        audit=audit,
        anomalies=AnomalyDetector(audit),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstream = _upstream_for(settings, transport)
        bff.upstream = upstream
        mark = getattr(stores.sessions, "mark", None)
        if mark is not None:  # Redis: tools can recognise this BFF's data before its first user
            try:
                await mark()
            except StoreUnavailable:  # requests fail closed (503) until Redis is back
                log.warning("the session store is unreachable at start-up")
        try:
            yield
        finally:
            bff.upstream = None
            await upstream.aclose()
            if stores.close is not None:
                closing = stores.close()
                if hasattr(closing, "__await__"):
                    await closing

    app = BffApp(
        title="Backend-for-frontend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.bff = bff
    app.include_router(routes.router)
    app.include_router(messages.router)
    app.include_router(counting.router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, messages_limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.own_middleware = tuple(app.user_middleware)
    app.messages_app = SecurityHeaders(
        BodyLimit(app.handle_messages, messages_limit=settings.max_body_bytes)
    )
    return app
