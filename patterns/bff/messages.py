"""``POST /claude/messages``: the one route that spends the user's key.

Order of checks, cheapest refusal first, and nothing forwarded unless all pass: Origin,
session and CSRF; rate limit; token budget; body size; validation; the user's key. Then the
validated request goes upstream with that key, and the answer (streamed or not) comes back
with usage recorded in the store, the audit trail and the anomaly detector.

The same handler answers ``POST /claude/v1/messages``, so the official SDK works with
``base_url=<bff>/claude`` and nothing else (see the notebook and tests).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Final

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from patterns.bff.context import Bff, SignedIn, bff_of, signed_in
from patterns.bff.proxy import (
    UpstreamAnswer,
    UsageScanner,
    open_upstream,
    relay,
    upstream_error,
    usage_of,
)
from patterns.bff.validation import check_request, parse_body
from patterns.keys import ApiKey
from patterns.upstream.envelope import UpstreamError

__all__ = [
    "PATHS",
    "SettledStream",
    "enforce_rate_limit",
    "handle",
    "read_body",
    "router",
    "stored_key",
]

router = APIRouter()

_TOO_LARGE: Final = "request body too large for this service"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` (declared or as it arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamError(413, _TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UpstreamError(413, _TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class _Admitted:
    body: bytes
    model: str
    stream: bool
    hold: int  # tokens held against the budget until the real usage is known (0: no budget)
    max_tokens: int


_NON_ASCII: Final = bytes(range(128, 256))


def _hold_for(body: bytes, max_tokens: int) -> int:
    """An upper bound on what one call can cost: its output cap plus a generous estimate of
    its input. A token is about 4 bytes of English text: count one per 3 ASCII bytes. Other
    scripts tokenise far denser (a CJK character or an emoji can be a token or more, in 3 or
    4 bytes of UTF-8): count one per non-ASCII byte."""
    ascii_bytes = len(body.translate(None, _NON_ASCII))
    return max_tokens + ascii_bytes // 3 + (len(body) - ascii_bytes) + 1


async def enforce_rate_limit(bff: Bff, who: SignedIn, bucket: str) -> None:
    """The user's rate limit for ``bucket`` (``messages``, ``count_tokens``): 429 past it."""
    settings = bff.settings
    if not settings.defences.rate_limit:
        return
    decision = await bff.stores.limiter.hit(
        f"{bucket}:{who.username}", settings.message_limit, settings.clock()
    )
    if not decision.allowed:
        bff.audit.record("rate_limited", user=who.username, status=429)
        wait = str(max(1, int(decision.retry_after + 0.999)))
        raise UpstreamError(
            429, "too many requests for this user; slow down", headers={"retry-after": wait}
        )


async def stored_key(bff: Bff, who: SignedIn) -> tuple[ApiKey, str]:
    """The user's key and its fingerprint, or the 400 that says to store one."""
    found = await bff.vault.key_for(who.username)
    if found is None:
        raise UpstreamError(
            400, "no Anthropic key stored for you; save one with PUT /keys/anthropic"
        )
    return found


async def _admit(bff: Bff, who: SignedIn, request: Request) -> _Admitted:
    """Refuse or admit; return what to forward and what it may cost."""
    settings = bff.settings
    await enforce_rate_limit(bff, who, "messages")
    if settings.token_budget is not None:
        used = await bff.stores.usage.get(who.username)
        if used.total_tokens >= settings.token_budget:
            bff.audit.record("budget_exhausted", user=who.username, status=403)
            raise UpstreamError(403, "your token budget is used up; ask an administrator")
    limit = settings.max_body_bytes if settings.defences.request_validation else 64 * 2**20
    raw = await read_body(request, limit)
    payload = parse_body(raw)
    if not settings.defences.request_validation:  # the lab's switch: forward as received
        asked = payload.get("max_tokens")
        cap = asked if isinstance(asked, int) and asked > 0 else settings.max_tokens_cap
        admitted = _Admitted(raw, str(payload.get("model")), payload.get("stream") is True, 0, cap)
    else:
        call = check_request(
            payload, allowed_models=settings.allowed_models, max_tokens_cap=settings.max_tokens_cap
        )
        body = call.upstream_body()
        admitted = _Admitted(body, call.model, call.stream, 0, call.max_tokens)
    if settings.token_budget is None:
        return admitted
    # Hold the most this call can cost, atomically, so concurrent calls cannot all pass a
    # check of the same old total; the hold is settled to the real usage afterwards.
    hold = _hold_for(admitted.body, admitted.max_tokens)
    if not await bff.stores.usage.reserve(who.username, hold, settings.token_budget):
        bff.audit.record("budget_exhausted", user=who.username, status=403)
        raise UpstreamError(
            403, "this request could exceed your token budget; ask for fewer max_tokens"
        )
    return _Admitted(admitted.body, admitted.model, admitted.stream, hold, admitted.max_tokens)


async def _account(
    bff: Bff,
    who: SignedIn,
    *,
    model: str,
    fingerprint: str,
    status: int,
    tokens: tuple[int, int],
    started: float,
    request_id: str,
    upstream_id: str | None,
    stream: bool,
) -> None:
    inputs, outputs = tokens
    await bff.stores.usage.add(who.username, 1, inputs, outputs)
    bff.audit.record(
        "message",
        user=who.username,
        key_fingerprint=fingerprint,
        model=model,
        input_tokens=inputs,
        output_tokens=outputs,
        status=status,
        stream=stream,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        request_id=request_id,
        upstream_request_id=upstream_id,
    )
    bff.anomalies.observe(who.username, bff.settings.clock(), inputs + outputs)


async def handle(request: Request) -> Response:
    started = time.perf_counter()
    bff = bff_of(request.app)
    request_id = bff.request_id()
    request.state.request_id = request_id
    who = await signed_in(request, changes_state=True)
    admitted = await _admit(bff, who, request)
    try:
        response = await _forward(bff, who, admitted, request_id, started)
    except BaseException:
        # Nothing was spent, or it was accounted before the error. Shielded: a cancelled
        # request must not keep its hold on the user's budget.
        with anyio.CancelScope(shield=True):
            await _release(bff, who, admitted.hold)
        raise
    if admitted.hold and not isinstance(response, SettledStream):  # a stream settles its own
        with anyio.CancelScope(shield=True):
            await _release(bff, who, admitted.hold)
    return response


async def _forward(
    bff: Bff, who: SignedIn, admitted: _Admitted, request_id: str, started: float
) -> Response:
    body, model, stream = admitted.body, admitted.model, admitted.stream
    key, fingerprint = await stored_key(bff, who)
    assert bff.upstream is not None, "the app's lifespan did not run"
    upstream = await open_upstream(bff.upstream, body, key, bff.settings.anthropic_version)
    upstream_id = upstream.headers.get("request-id")
    headers = {"request-id": request_id}
    if upstream_id:
        headers["upstream-request-id"] = upstream_id
    call = _Call(bff, who, admitted, model, fingerprint, started, request_id, upstream_id)
    if upstream.status_code >= 400:
        error = await upstream_error(upstream)
        await call.account(status=error.status, tokens=(0, 0), stream=False)
        raise error
    if not stream:
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        try:
            tokens = usage_of(json.loads(raw))
        except (ValueError, TypeError):
            tokens = (0, 0)
        await call.account(status=200, tokens=tokens, stream=False)
        return Response(raw, media_type="application/json", headers=headers)
    return SettledStream(call, upstream, headers)


@dataclass(slots=True)
class _Call:
    """One forwarded call, for the audit record and the usage store."""

    bff: Bff
    who: SignedIn
    admitted: _Admitted
    model: str
    fingerprint: str
    started: float
    request_id: str
    upstream_id: str | None

    async def account(self, *, status: int, tokens: tuple[int, int], stream: bool) -> None:
        await _account(
            self.bff,
            self.who,
            model=self.model,
            fingerprint=self.fingerprint,
            status=status,
            tokens=tokens,
            started=self.started,
            request_id=self.request_id,
            upstream_id=self.upstream_id,
            stream=stream,
        )


class SettledStream(StreamingResponse):
    """The streamed answer, settled exactly once however it ends.

    Settling closes the upstream answer (its connection goes back to the pool or is
    dropped), records usage and the audit event, and releases the budget hold. It runs when
    the last chunk has been relayed (before the end of the response, so ``/usage`` is up to
    date when the client sees the stream end), when the client leaves mid-stream, and when
    the client left before the first chunk: a server may then give up on the response
    before the body generator ever starts, and a ``finally`` inside the generator alone
    would never run, leaking the hold and the upstream connection. Settling is shielded
    from cancellation, so a disconnect cannot interrupt it half-way.
    """

    def __init__(self, call: _Call, upstream: UpstreamAnswer, headers: dict[str, str]):
        self._call = call
        self._upstream = upstream
        self._scanner = UsageScanner()
        self._finished = False
        self._settled = False
        self._chunks = self._relay()
        super().__init__(self._chunks, media_type="text/event-stream", headers=headers)

    async def _relay(self) -> AsyncGenerator[bytes]:
        try:
            async for chunk in relay(self._upstream, self._scanner):
                yield chunk
            self._finished = True
        finally:
            with anyio.CancelScope(shield=True):
                await self.settle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._chunks.aclose()  # left mid-way: the generator's finally settles
                await self.settle()  # never started: settle here

    async def settle(self) -> None:
        """Close upstream, account and release the hold; a no-op after the first call."""
        if self._settled:
            return
        self._settled = True
        call = self._call
        try:
            await self._upstream.aclose()
            tokens = (self._scanner.input_tokens, self._scanner.output_tokens)
            if not self._finished:
                # The client left (or the stream broke) before the final usage arrived: the
                # API may have generated up to max_tokens, so charge that, not what was seen.
                tokens = (tokens[0], max(tokens[1], call.admitted.max_tokens))
            await call.account(status=200, stream=True, tokens=tokens)
        finally:
            await _release(call.bff, call.who, call.admitted.hold)


async def _release(bff: Bff, who: SignedIn, hold: int) -> None:
    if hold:
        await bff.stores.usage.release(who.username, hold)


#: Served by :class:`~patterns.bff.app.BffApp` ahead of FastAPI's router; the routes below
#: are the same handler for an app that is a plain FastAPI (and for the route listing).
PATHS: Final = frozenset({"/claude/messages", "/claude/v1/messages"})
for _path in sorted(PATHS):
    router.add_api_route(_path, handle, methods=["POST"])
