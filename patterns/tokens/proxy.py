"""The token proxy: a Messages API endpoint that accepts temporary tokens in place of a key.

Clients keep the official SDK and change two arguments: ``base_url`` (this proxy) and
``api_key`` (a temporary token from ``POST /tokens``). For each call the proxy redeems the
token (scope check and use count in one atomic step), swaps in the organisation's real key,
and forwards the request, streaming the answer back chunk by chunk. Errors use the Anthropic
envelope, so the SDK raises ``AuthenticationError`` for a bad token and
``PermissionDeniedError`` for a request outside the token's scope.

Minting and revocation sit behind an issuer secret (:mod:`patterns.tokens.issuer`): in the
guide's diagram that is the auth service, which signs users in and then asks this proxy for
a token on their behalf.

Every proxied call, mint, revocation and refusal is one structured event on the
``patterns.tokens.audit`` logger (JSON lines, redacting filter on), in the BFF's shape where
the fields overlap (:mod:`patterns.audit`): user, token id, key ref and key fingerprint (never
a key, never a token), model, input and output tokens, status, latency and request id. To
read the usage, upstream answers are requested with ``accept-encoding: identity`` and scanned
on the way through, as the BFF does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio.to_thread
import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from patterns.audit import TOKENS_AUDIT_LOGGER, AuditTrail
from patterns.errors import ConfigurationError, StoreUnavailable, TokenRejected, TokenScopeError
from patterns.keys import ApiKey
from patterns.kms.protocol import require_tls
from patterns.tokens.answers import NO_STORE, error_response, new_request_id, rfc3339
from patterns.tokens.calls import (
    STORE_DOWN,
    CallRecord,
    TokenRefusal,
    UsageReader,
    audited_refusal,
)
from patterns.tokens.intake import (
    DEFAULT_ALLOWED_FIELDS,
    checked_betas,
    parse_strict,
    read_capped,
    scope_of,
)
from patterns.tokens.issuer import MintRequest, add_issuer_routes
from patterns.tokens.keyring import Keyring
from patterns.tokens.model import TOKEN_RE, Grant
from patterns.tokens.service import REJECTED_MESSAGE, TokenService
from patterns.upstream.envelope import UpstreamError

__all__ = ["DEFAULT_ALLOWED_FIELDS", "MintRequest", "ProxySettings", "create_app"]

log = logging.getLogger("patterns.tokens.proxy")

_FORWARDED_REQUEST_HEADERS: Final = frozenset({"content-type", "accept", "anthropic-version"})
_FORWARDED_RESPONSE_HEADERS: Final = frozenset(
    {"content-type", "content-encoding", "request-id", "retry-after", "x-should-retry"}
)
_EVENT_OF: Final = {"/v1/messages": "message", "/v1/messages/count_tokens": "count_tokens"}


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """How the proxy reaches the API and which secrets it holds.

    ``api_keys`` maps a key reference (a token's ``key_ref``) to a real key, so the
    organisation key can be rolled over without touching any token.
    """

    upstream_url: str
    api_keys: Mapping[str, ApiKey]
    issuer_secret: ApiKey
    max_body_bytes: int = 4 * 1024 * 1024
    timeout: float = 600.0
    max_connections: int = 64
    extra_client_options: dict[str, Any] = field(default_factory=dict)
    allow_insecure_upstream: bool = False  # plain http beyond loopback: a network you trust
    allowed_fields: frozenset[str] = DEFAULT_ALLOWED_FIELDS
    allowed_betas: frozenset[str] = frozenset()  # anthropic-beta values clients may send

    def __post_init__(self) -> None:
        if not self.api_keys:
            raise ConfigurationError("the token proxy needs at least one API key to forward with")
        require_tls(
            self.upstream_url,
            service="the upstream API",
            allow_insecure=self.allow_insecure_upstream,
            exposes="the organisation's API key",
        )
        if len(self.issuer_secret.reveal()) < 32:
            raise ConfigurationError(
                "the issuer secret must have at least 32 characters; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )


def _presented_token(request: Request) -> str:
    token = request.headers.get("x-api-key")
    if token is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    return token.strip()


def create_app(
    service: TokenService,
    settings: ProxySettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    audit: AuditTrail | None = None,
) -> FastAPI:
    """Build the proxy. ``transport`` replaces the HTTP transport to the upstream (tests);
    ``audit`` receives the events (default: a trail on ``patterns.tokens.audit`` timed by
    the service's clock). ``app.state.audit`` is the trail."""
    trail = audit or AuditTrail(clock=service.clock, logger=TOKENS_AUDIT_LOGGER)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        async with httpx.AsyncClient(
            base_url=settings.upstream_url,
            transport=transport,
            timeout=httpx.Timeout(settings.timeout, connect=10.0),
            limits=limits,
            **settings.extra_client_options,
        ) as client:
            app.state.client = client
            yield

    app = FastAPI(
        title="Temporary-token proxy",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.state.audit = trail
    if isinstance(settings.api_keys, Keyring):
        # Idempotent: the service mints under the keyring's current key, and the keyring
        # shares the service's store as its registry, so revocations reach redemption.
        settings.api_keys.attach(service)

    @app.exception_handler(UpstreamError)
    async def refused(request: Request, error: UpstreamError) -> Response:
        return error_response(error.status, error.message, error.headers.get("request-id"))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in error.errors())
        return error_response(400, f"invalid request: check {fields or 'the body'}")

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, error: StoreUnavailable) -> Response:
        log.error("token store unavailable: refusing the request")
        return error_response(500, STORE_DOWN)

    add_issuer_routes(app, service, settings, trail)
    _add_message_routes(app, service, settings, trail)
    return app


async def _redeem(service: TokenService, token: str, model: str | None, limit: int | None) -> Grant:
    """Redeem, or raise the answer for the client with the reason for the audit log."""
    try:
        return await anyio.to_thread.run_sync(
            lambda: service.redeem(token, model=model, max_tokens=limit)
        )
    except TokenScopeError as error:
        log.info("scope violation (%s)", getattr(error, "reason", "?"))
        raise TokenRefusal(403, str(error), getattr(error, "reason", "scope")) from None
    except TokenRejected as error:
        log.info("token rejected (%s)", getattr(error, "reason", "?"))
        raise TokenRefusal(401, str(error), getattr(error, "reason", "rejected")) from None


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    try:
        return await client.send(request, stream=True)
    except httpx.TimeoutException:
        raise UpstreamError(504, "the upstream API did not answer in time") from None
    except httpx.TransportError:
        raise UpstreamError(500, "the upstream API could not be reached") from None


async def _forward(
    request: Request,
    call: CallRecord,
    service: TokenService,
    settings: ProxySettings,
    trail: AuditTrail,
    *,
    generates: bool,
) -> Response:
    """Check, redeem, swap the key and stream the answer back; the event is written when the
    answer has been relayed (or abandoned)."""
    token = _presented_token(request)
    if not TOKEN_RE.match(token):  # refuse before reading a byte of the body
        raise TokenRefusal(401, REJECTED_MESSAGE, "malformed")
    payload = parse_strict(await read_capped(request, settings.max_body_bytes))
    betas = checked_betas(request, payload, settings.allowed_fields, settings.allowed_betas)
    model, max_tokens = scope_of(payload, generates=generates)
    call.model, call.stream = model, payload.get("stream") is True
    call.grant = grant = await _redeem(service, token, model, max_tokens)
    try:
        # A Keyring may read the shared registry (a Redis round trip) under its lock: off
        # the event loop, so a slow store stalls this request, not every request.
        key = await anyio.to_thread.run_sync(settings.api_keys.get, grant.key_ref)
    except TokenRejected as error:  # a Keyring refuses tokens of a revoked key
        raise TokenRefusal(401, str(error), "key_revoked") from None
    if key is None:
        log.error("no API key configured for key_ref %s", grant.key_ref)
        raise UpstreamError(500, "the proxy is misconfigured; contact its operator")
    call.fingerprint = key.fingerprint
    headers = {k: v for k, v in request.headers.items() if k in _FORWARDED_REQUEST_HEADERS}
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    headers["x-api-key"] = key.reveal()
    headers["accept-encoding"] = "identity"  # plain bytes, so the usage can be read
    client: httpx.AsyncClient = request.app.state.client
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers["content-type"] = "application/json"
    upstream = await _send(
        client, client.build_request("POST", call.path, content=body, headers=headers)
    )
    answer_headers = {
        k: v for k, v in upstream.headers.items() if k.lower() in _FORWARDED_RESPONSE_HEADERS
    }
    answer_headers["akp-token-remaining-uses"] = str(grant.remaining)
    answer_headers["akp-token-expires-at"] = rfc3339(grant.expires_at)
    answer_headers.update(NO_STORE)
    reader = UsageReader(upstream.headers.get("content-type", ""))

    async def relay() -> AsyncIterator[bytes]:
        finished = False
        try:
            async for chunk in upstream.aiter_raw():
                reader.feed(chunk)
                yield chunk
            finished = True
        finally:
            await upstream.aclose()
            inputs, outputs = reader.tokens()
            trail.record(
                _EVENT_OF[call.path],
                **call.fields(),
                input_tokens=inputs,
                output_tokens=outputs,
                status=upstream.status_code,
                stream=call.stream,
                complete=None if finished else False,
                latency_ms=call.latency_ms(),
                request_id=upstream.headers.get("request-id"),
            )

    return StreamingResponse(
        relay(),
        status_code=upstream.status_code,
        headers=answer_headers,
        background=BackgroundTask(upstream.aclose),
    )


def _add_message_routes(
    app: FastAPI, service: TokenService, settings: ProxySettings, trail: AuditTrail
) -> None:
    """``/v1/messages`` and ``/v1/messages/count_tokens``: redeem, swap the key, forward."""

    async def forward(request: Request, path: str, *, generates: bool) -> Response:
        call = CallRecord(path, time.perf_counter())
        try:
            return await _forward(request, call, service, settings, trail, generates=generates)
        except (TokenRefusal, UpstreamError, StoreUnavailable) as error:
            if isinstance(error, StoreUnavailable):
                log.error("token store unavailable: refusing the request")
            raise audited_refusal(trail, call, error, new_request_id) from None

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        return await forward(request, "/v1/messages", generates=True)

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> Response:
        return await forward(request, "/v1/messages/count_tokens", generates=False)
