"""Sign-in, the key vault, usage and the demo page."""

from __future__ import annotations

import time
from importlib import resources
from typing import Final

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from patterns.bff.context import Bff, bff_of, signed_in
from patterns.bff.security import check_origin, clear_cookie, session_cookie
from patterns.bff.settings import COOKIE_NAME
from patterns.bff.vault import parse_api_key
from patterns.errors import InvalidKeyError
from patterns.upstream.envelope import UpstreamError

__all__ = ["router"]

router = APIRouter()

_STATIC: Final = {
    "bff-demo.js": "text/javascript; charset=utf-8",
    "bff-demo.css": "text/css; charset=utf-8",
}


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class StoreKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    api_key: str = Field(max_length=512)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, int(seconds + 0.999)))}


@router.post("/auth/login")
async def login(request: Request, body: Login) -> Response:
    bff = bff_of(request.app)
    settings = bff.settings
    check_origin(request, settings.allowed_origins, settings.defences)
    now = settings.clock()
    client = request.client.host if request.client else "unknown"
    # Per address, and per (user, address): a stranger cannot lock a user out by failing on
    # their name, and one address cannot spray passwords over many names.
    for bucket, limit in (
        (f"login-ip:{client}", settings.login_ip_limit),
        (f"login:{body.username}:{client}", settings.login_limit),
    ):
        decision = await bff.stores.limiter.hit(bucket, limit, now)
        if not decision.allowed:
            bff.audit.record("login_throttled", user=body.username, status=429)
            raise UpstreamError(
                429,
                "too many sign-in attempts; wait and try again",
                headers=_retry_after(decision.retry_after),
            )
    started = time.perf_counter()
    ok = await anyio.to_thread.run_sync(_authenticate_bounded, bff, body.username, body.password)
    if ok is None:
        raise UpstreamError(529, "sign-in is busy; try again in a moment", headers=_retry_after(2))
    if not ok:
        bff.audit.record("login_failed", user=body.username, status=401)
        raise UpstreamError(401, "wrong username or password")
    old = request.cookies.get(COOKIE_NAME)
    if old and settings.defences.server_side_logout:
        await bff.stores.sessions.delete(old)  # a fixed or stale id dies at every sign-in
    session_id, session = await bff.stores.sessions.create(body.username, now)
    bff.audit.record(
        "login",
        user=body.username,
        status=200,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    response = JSONResponse({"csrf_token": session.csrf_token})
    response.headers["set-cookie"] = session_cookie(
        session_id, settings.absolute_timeout, settings.defences
    )
    return response


def _authenticate_bounded(bff: Bff, username: str, password: str) -> bool | None:
    """Check a password with at most ``max_concurrent_logins`` Argon2id runs at once (19 MiB
    each); None when no slot frees up within two seconds."""
    slots = bff.login_slots
    assert slots is not None
    if not slots.acquire(timeout=2.0):
        return None
    try:
        return bff.users.authenticate(username, password)
    finally:
        slots.release()


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=True)
    if bff.settings.defences.server_side_logout:
        await bff.stores.sessions.delete(who.session_id)
    bff.audit.record("logout", user=who.username, status=204)
    response = Response(status_code=204)
    response.headers["set-cookie"] = clear_cookie()
    response.headers["clear-site-data"] = '"cache", "cookies", "storage"'
    return response


@router.get("/auth/me")
async def me(request: Request) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=False)
    record = await bff.vault.record(who.username)
    return JSONResponse(
        {
            "username": who.username,
            "has_key": record is not None,
            "key_fingerprint": record.fingerprint if record else None,
            # Same-origin script may read it (no CORS), another origin cannot.
            "csrf_token": who.session.csrf_token,
            # The page asks with the first of these, so the model lives in one place (settings).
            "models": list(bff.settings.allowed_models),
        }
    )


@router.put("/keys/anthropic", status_code=204)
async def put_key(request: Request, body: StoreKey) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=True)
    try:
        key = parse_api_key(body.api_key)
    except InvalidKeyError as error:
        raise UpstreamError(400, f"api_key: {error}") from None
    settings = bff.settings
    if settings.defences.rate_limit:  # each write seals the key: one call to the customer's KMS
        decision = await bff.stores.limiter.hit(
            f"key-write:{who.username}", settings.key_write_limit, settings.clock()
        )
        if not decision.allowed:
            raise UpstreamError(
                429,
                "too many key changes; wait and try again",
                headers=_retry_after(decision.retry_after),
            )
    fingerprint = await bff.vault.put(who.username, key)
    bff.audit.record("key_stored", user=who.username, key_fingerprint=fingerprint, status=204)
    return Response(status_code=204)


@router.get("/keys/anthropic")
async def get_key(request: Request) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=False)
    record = await bff.vault.record(who.username)
    if record is None:
        raise UpstreamError(404, "no key stored; save one with PUT /keys/anthropic")
    return JSONResponse({"has_key": True, "key_fingerprint": record.fingerprint})


@router.delete("/keys/anthropic", status_code=204)
async def delete_key(request: Request) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=True)
    record = await bff.vault.record(who.username)
    await bff.vault.delete(who.username)
    bff.audit.record(
        "key_deleted",
        user=who.username,
        key_fingerprint=record.fingerprint if record else None,
        status=204,
    )
    return Response(status_code=204)


@router.get("/usage")
async def usage(request: Request) -> Response:
    bff = bff_of(request.app)
    who = await signed_in(request, changes_state=False)
    used = await bff.stores.usage.get(who.username)
    return JSONResponse(
        {
            "username": who.username,
            "requests": used.requests,
            "input_tokens": used.input_tokens,
            "output_tokens": used.output_tokens,
            "token_budget": bff.settings.token_budget,
        }
    )


def _web_file(name: str) -> bytes:
    return resources.files("patterns").joinpath("web", name).read_bytes()


@router.get("/")
async def page() -> Response:
    return HTMLResponse(_web_file("bff-demo.html"))


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media = _STATIC.get(name)
    if media is None:
        raise UpstreamError(404, "Not Found")
    return Response(_web_file(name), media_type=media)


@router.get("/health")
async def health() -> Response:
    return JSONResponse({"status": "ok"})
