"""Browser-facing defences: security headers, the session cookie, Origin and CSRF checks.

- Headers on every response (a pure ASGI middleware, so streaming is untouched): a strict
  Content-Security-Policy (scripts only from this origin, no inline script, no framing),
  ``nosniff``, ``Referrer-Policy: no-referrer``, COOP/CORP ``same-origin``, HSTS, and
  ``Cache-Control: no-store`` on everything but the demo page's static files (ASVS 14.3.2).
  No CORS headers at all: other origins can send a request but never read an answer.
- The cookie: ``__Host-session=<id>; Secure; HttpOnly; SameSite=Strict; Path=/``.
- State-changing requests need an allowed ``Origin`` (the BFF's own, or one configured) and
  an ``X-CSRF-Token`` equal to the session's (compared in constant time). SameSite=Strict
  already keeps the cookie off cross-site requests; the two checks cover same-site
  subdomains, older browsers and a cookie set some other way.
"""

from __future__ import annotations

import hmac
from typing import Any, Final

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.bff.settings import COOKIE_NAME, Defences
from patterns.upstream.envelope import UpstreamError

__all__ = [
    "CSRF_HEADER",
    "SECURITY_HEADERS",
    "BodyLimit",
    "SecurityHeaders",
    "check_csrf",
    "check_origin",
    "clear_cookie",
    "session_cookie",
]

CSRF_HEADER: Final = "x-csrf-token"

SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        b"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
)
_NO_STORE: Final = (b"cache-control", b"no-store")
_REVALIDATE: Final = (b"cache-control", b"no-cache")


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` and a cache policy to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"cache-control"]
                headers.extend(SECURITY_HEADERS)
                headers.append(_REVALIDATE if static else _NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Cap every request body before anything reads it: ``/claude/`` requests at the
    Messages limit, everything else (sign-in, key storage) at a few KiB.

    FastAPI reads and parses a route's whole body to fill its pydantic model before the route
    (or its Origin check and rate limit) runs, so without this an anonymous client could make
    the server buffer a body of any size. Chunked bodies are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, *, messages_limit: int, small_limit: int = 16 * 1024):
        self.app = app
        self.messages_limit = messages_limit
        self.small_limit = small_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.messages_limit if _route_path(scope).startswith("/claude/") else self.small_limit
        )
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared.isdigit() and int(declared) > limit:
                raise StarletteHTTPException(413)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes through FastAPI's body parsing untouched and
                    # is answered as 413 request_too_large by the app's handler.
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, limited, send)


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point: under ``Mount("/bff", app)`` or a root path,
    Starlette keeps the full path in ``scope["path"]`` and the prefix in ``root_path``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


def session_cookie(session_id: str, max_age: float, defences: Defences) -> str:
    """The ``Set-Cookie`` value for a new session."""
    flags = "Secure; HttpOnly; SameSite=Strict" if defences.http_only_cookie else "Secure"
    return f"{COOKIE_NAME}={session_id}; Max-Age={int(max_age)}; Path=/; {flags}"


def clear_cookie() -> str:
    return f"{COOKIE_NAME}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict"


def own_origin(request: Request) -> str:
    """This server's origin as the browser addressed it (scheme and Host header)."""
    return f"{request.scope.get('scheme', 'http')}://{request.headers.get('host', '')}"


def check_origin(request: Request, allowed: tuple[str, ...], defences: Defences) -> None:
    """Refuse a state-changing request whose ``Origin`` is missing or not allowed."""
    if not defences.origin_check:
        return
    origin = request.headers.get("origin")
    if origin is None:
        raise UpstreamError(
            403, "state-changing requests must carry an Origin header (browsers send it)"
        )
    if origin != own_origin(request) and origin not in allowed:
        raise UpstreamError(403, "requests from this origin are not allowed")


def check_csrf(request: Request, expected: str, defences: Defences) -> None:
    """Refuse a request whose ``X-CSRF-Token`` does not match the session's token."""
    if not defences.csrf_token:
        return
    presented = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise UpstreamError(403, "missing or wrong X-CSRF-Token; read it from the login answer")


def describe_headers(headers: Any) -> dict[str, str]:
    """The security headers of a response, for display."""
    names = [name.decode() for name, _ in SECURITY_HEADERS] + ["cache-control"]
    return {name: headers[name] for name in names if name in headers}
