"""The stand-in's outer layer: request ids, the CORS rule, body limits and the request log.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so that streamed answers pass through
untouched and an injected mid-stream drop really drops the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.scanning import redact
from patterns.upstream.envelope import UpstreamError, error_json

if TYPE_CHECKING:
    from patterns.upstream.app import Controls

__all__ = ["CORS_REJECTION", "DANGEROUS_HEADER", "StandInMiddleware"]

#: The header a browser page must send to call the API directly (and the reason it is named
#: "dangerous": it means "I accept that my key is in a browser").
DANGEROUS_HEADER: Final = "anthropic-dangerous-direct-browser-access"

#: The real API's answer to a browser request without that header.
CORS_REJECTION: Final = (
    f"CORS requests must set '{DANGEROUS_HEADER}' header"  # the real message, verbatim
)

_ALLOWED_METHODS: Final = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
_PREFLIGHT_MAX_AGE: Final = "86400"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class StandInMiddleware:
    """Wraps the routes: see the module docstring. Admin routes bypass CORS and logging."""

    def __init__(self, app: ASGIApp, controls: Controls) -> None:
        self.app = app
        self.controls = controls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.controls.settings.ids("req")
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        if path.startswith("/_stand-in/"):

            async def with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [*message.get("headers", []), (b"request-id", request_id.encode())]
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, with_id)
            return
        origin = _header(scope, b"origin")
        dangerous = (_header(scope, DANGEROUS_HEADER.encode()) or "").strip().lower() == "true"
        body = bytearray()
        size = [0]
        status = 0

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if len(body) < 4096:
                    body.extend(chunk[: 4096 - len(body)])
                size[0] += len(chunk)
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"request-id", request_id.encode()))
                if origin is not None and dangerous:
                    headers.append((b"access-control-allow-origin", b"*"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if scope["method"] == "OPTIONS" and origin is not None:
                status = 200
                await self._preflight(scope, send, request_id)
            elif origin is not None and not dangerous:
                status = 401
                await self._reply_error(send, UpstreamError(401, CORS_REJECTION), request_id)
            elif self._too_large(scope):
                status = 413
                await self._reply_error(send, UpstreamError(413), request_id)
            else:
                await self.app(scope, receiving, sending)
        finally:
            self._record(scope, request_id, bytes(body), size[0], status)

    def _record(self, scope: Scope, request_id: str, body: bytes, size: int, status: int) -> None:
        declared = _header(scope, b"content-length") or ""
        if size == 0 and declared.isdigit():  # refused before the body was read
            size = int(declared)
        self.controls.request_log.record(
            request_id=request_id,
            method=scope["method"],
            path=redact(scope["path"]),  # a key in a URL (ASVS 14.2.1) stays out of the log
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
            body_size=size,
            status=status,
        )

    def _too_large(self, scope: Scope) -> bool:
        declared = _header(scope, b"content-length")
        return bool(declared and declared.isdigit()) and int(str(declared)) > (
            self.controls.settings.max_request_bytes
        )

    async def _preflight(self, scope: Scope, send: Send, request_id: str) -> None:
        """Answer a CORS preflight: any origin, the requested headers, cached for a day.

        A preflight carries header *names* only, never values, so it cannot be refused for a
        missing dangerous header; the rule applies to the request that follows.
        """
        requested = _header(scope, b"access-control-request-headers") or ""
        headers: list[tuple[bytes, bytes]] = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-allow-methods", _ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", requested.encode("latin-1")),
            (b"access-control-max-age", _PREFLIGHT_MAX_AGE.encode()),
            (b"request-id", request_id.encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _reply_error(self, send: Send, error: UpstreamError, request_id: str) -> None:
        payload = error_json(error, request_id)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"request-id", request_id.encode()),
            (b"x-should-retry", b"false"),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
