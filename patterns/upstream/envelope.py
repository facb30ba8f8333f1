"""The Anthropic error envelope, and the one exception the stand-in raises to answer with it.

Every error the real API returns has the same body, ``{"type": "error", "error": {"type": T,
"message": M}, "request_id": R}``, and a status that fixes ``T``. The official SDK picks its
exception class from the status (``AuthenticationError`` for 401, ``RateLimitError`` for 429,
``OverloadedError`` for 529, ...), so the stand-in must get both right for the SDK, and every
proxy tested against it, to behave as it would in production.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from patterns.scanning import redact

__all__ = [
    "DEFAULT_MESSAGES",
    "ERROR_TYPES",
    "UpstreamError",
    "error_body",
    "error_json",
]

#: Status -> the ``error.type`` the real API sends with it.
ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: A plausible message per status, used when a fault is injected without one.
DEFAULT_MESSAGES: Final[Mapping[int, str]] = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    402: "Your credit balance is too low to access the Anthropic API.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "This request would exceed your organization's rate limit. Please try again later.",
    500: "Internal server error",
    504: "Request timed out.",
    529: "Overloaded",
}


class UpstreamError(Exception):
    """An error answer: HTTP status, the envelope's type and message, and extra headers.

    Messages are written for the caller and never contain a credential (tests plant canary
    keys and search every response for them).
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if status not in ERROR_TYPES:
            raise ValueError(f"no Anthropic error type is defined for HTTP status {status}")
        self.status = status
        self.error_type = ERROR_TYPES[status]
        # Messages echo field names and values from the request; a key pasted into the wrong
        # field must not come back in the answer (or in a proxy's log of it).
        self.message = redact(message) if message is not None else DEFAULT_MESSAGES[status]
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.error_type}: {self.message}")


def error_body(error: UpstreamError, request_id: str) -> dict[str, object]:
    """The JSON envelope of ``error``."""
    return {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": request_id,
    }


def error_json(error: UpstreamError, request_id: str) -> bytes:
    """The envelope serialised the way the API sends it (compact JSON)."""
    return json.dumps(error_body(error, request_id), separators=(",", ":")).encode()
