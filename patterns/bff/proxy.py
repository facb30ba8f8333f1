"""Forwarding a validated Messages request upstream with the user's own key.

One connection pool per app (made in the lifespan) keeps connections open; a client per
request, as in the guide, pays a TCP (and TLS) handshake every time. The pool is
:class:`~patterns.bff.pool.UpstreamPool`, a lean HTTP/1.1 client for this one origin (see
that module for why, and what it leaves out), or :class:`HttpxUpstream` when a transport is
injected or an egress proxy applies. A streamed answer is passed on chunk by chunk as it
arrives (``accept-encoding: identity`` so the bytes are the SSE text itself), while a light
scanner reads the ``usage`` objects of ``message_start`` and ``message_delta`` on the way
through for accounting. Upstream errors are re-issued in the Anthropic envelope with the
BFF's request id; the upstream's id is kept in the audit log and the ``upstream-request-id``
header.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import httpx

from patterns.bff.pool import PooledAnswer, UpstreamPool
from patterns.keys import ApiKey
from patterns.upstream.envelope import ERROR_TYPES, UpstreamError

__all__ = [
    "HttpxUpstream",
    "PooledAnswer",
    "Upstream",
    "UpstreamAnswer",
    "UpstreamPool",
    "UsageScanner",
    "open_upstream",
    "relay",
    "upstream_error",
    "usage_of",
]

_KEY_REFUSED: Final = (
    "the Anthropic API refused your stored key (revoked, or without access to this model); "
    "save a valid key with PUT /keys/anthropic"
)
_PASSED_ON: Final = frozenset({"retry-after", "retry-after-ms", "x-should-retry"})


@dataclass(slots=True)
class UsageScanner:
    """Reads token counts out of an SSE stream without holding more than one partial line."""

    input_tokens: int = 0
    output_tokens: int = 0
    _partial: bytes = b""

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                self._read(line[5:])

    def _read(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        usage = event.get("usage") or (event.get("message") or {}).get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("input_tokens") or self.input_tokens)
            self.output_tokens = int(usage.get("output_tokens") or self.output_tokens)


def usage_of(body: dict[str, Any]) -> tuple[int, int]:
    usage = body.get("usage") or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


class UpstreamAnswer(Protocol):
    """What the BFF reads of an upstream answer: ``httpx.Response`` and :class:`PooledAnswer`
    both fit."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """Sends one Messages request and returns the answer before its body is read."""

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> UpstreamAnswer: ...

    async def aclose(self) -> None: ...


class HttpxUpstream:
    """The general path: any ``httpx`` transport (a test's ``MockTransport``, an egress
    proxy taken from ``HTTPS_PROXY``), through one shared ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> UpstreamAnswer:
        request = self.client.build_request("POST", path, content=body, headers=headers)
        response = await self.client.send(request, stream=True)
        return cast("UpstreamAnswer", response)

    async def aclose(self) -> None:
        await self.client.aclose()


async def open_upstream(
    upstream: Upstream,
    body: bytes,
    key: ApiKey,
    anthropic_version: str,
    path: str = "/v1/messages",
) -> UpstreamAnswer:
    """Send the request; the response body is not read yet (streaming)."""
    headers = {
        "content-type": "application/json",
        "accept-encoding": "identity",
        "anthropic-version": anthropic_version,
        "x-api-key": key.reveal(),
    }
    try:
        return await upstream.post(path, body, headers)
    except (httpx.TimeoutException, TimeoutError):
        raise UpstreamError(504, "the Anthropic API did not answer in time") from None
    except (httpx.TransportError, OSError):
        raise UpstreamError(500, "the Anthropic API could not be reached; try again") from None


async def upstream_error(response: UpstreamAnswer) -> UpstreamError:
    """The upstream's error, re-worded where it concerns the key, statuses kept for the SDK."""
    try:
        raw = await response.aread()
    finally:
        await response.aclose()
    message = None
    try:
        message = json.loads(raw)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    headers = {k: v for k, v in response.headers.items() if k.lower() in _PASSED_ON}
    status = response.status_code
    if status in {401, 403}:
        return UpstreamError(403, _KEY_REFUSED)
    if status not in ERROR_TYPES:
        status = 500
    text = message if isinstance(message, str) and len(message) < 500 else None
    return UpstreamError(status, text, headers=headers)


async def relay(response: UpstreamAnswer, scanner: UsageScanner) -> AsyncIterator[bytes]:
    """Yield the upstream body chunk by chunk, feeding the usage scanner."""
    async for chunk in response.aiter_raw():
        scanner.feed(chunk)
        yield chunk
