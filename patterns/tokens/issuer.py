"""The token proxy's issuer routes, behind the issuer secret: ``POST /tokens`` (mint),
``DELETE /tokens/{id}`` and ``DELETE /users/{user}/tokens`` (revoke one, or all of a user's).

The per-user revocation answers ``{"revoked": n, "known": bool}``. ``known`` says whether
this proxy's store (shared by every replica on one Redis) issued the user a token within its
``user_retention`` (30 days by default) or holds a live one: incident response needs it,
because "revoked 0" alone reads the same for a user with nothing left, a mistyped user id
and a proxy that is not the one the user's tokens came from.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import TYPE_CHECKING, Final

import anyio.to_thread
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patterns.audit import AuditTrail
from patterns.errors import InvalidRequestError
from patterns.tokens.answers import NO_STORE, refusal, rfc3339
from patterns.tokens.intake import read_capped
from patterns.tokens.keyring import Keyring, add_rollover_route
from patterns.tokens.service import TokenService
from patterns.upstream.envelope import UpstreamError

if TYPE_CHECKING:
    from patterns.tokens.proxy import ProxySettings

__all__ = ["MintRequest", "add_issuer_routes"]

log = logging.getLogger("patterns.tokens.proxy")  # the proxy's operational log, as before
_TOKEN_ID_RE: Final = re.compile(r"^tok_[0-9a-f]{24}$")


class MintRequest(BaseModel):
    """``POST /tokens``: who the token is for, and its limits (defaults from the service)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=256)
    ttl_seconds: float | None = Field(default=None, gt=0)
    max_uses: int | None = Field(default=None, ge=1)
    models: list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)


def add_issuer_routes(
    app: FastAPI, service: TokenService, settings: ProxySettings, trail: AuditTrail
) -> None:
    """``POST /tokens`` and the two revocation routes, behind the issuer secret."""

    def require_issuer(request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        expected = settings.issuer_secret.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
            refused = refusal(401, "a valid issuer secret is required (Authorization: Bearer)")
            trail.record(
                "issuer_refused",
                route=getattr(request.scope.get("route"), "path", "unknown"),
                status=401,
                request_id=refused.headers["request-id"],
            )
            raise refused

    issuer = [Depends(require_issuer)]

    @app.post("/tokens", status_code=201)
    async def mint(request: Request) -> Response:
        # The issuer check comes before the body is read: a declared dependency would run only
        # after FastAPI had read and parsed a body of any size from an anonymous client.
        require_issuer(request)
        raw = await read_capped(request, settings.max_body_bytes)
        try:
            body = MintRequest.model_validate_json(raw)
        except ValidationError as error:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
            raise UpstreamError(400, f"invalid request: check {fields or 'the body'}") from None
        try:
            minted = await anyio.to_thread.run_sync(
                lambda: service.mint(
                    body.user_id,
                    ttl=body.ttl_seconds,
                    max_uses=body.max_uses,
                    models=body.models,
                    max_tokens=body.max_tokens,
                )
            )
        except InvalidRequestError as error:
            raise UpstreamError(400, str(error)) from None
        log.info("minted %s for user %s", minted.token_id, minted.user_id)
        models = list(minted.models) if minted.models is not None else None
        trail.record(
            "token_minted",
            user=minted.user_id,
            token_id=minted.token_id,
            key_ref=service.key_ref,
            max_uses=minted.max_uses,
            expires_at=round(minted.expires_at, 3),
            models=models,
            status=201,
        )
        payload = {
            "token": minted.token,
            "token_id": minted.token_id,
            "user_id": minted.user_id,
            "expires_at": rfc3339(minted.expires_at),
            "max_uses": minted.max_uses,
            "models": models,
            "max_tokens": minted.max_tokens,
        }
        return JSONResponse(payload, status_code=201, headers=NO_STORE)

    @app.delete("/tokens/{token_id}", status_code=204, dependencies=issuer)
    async def revoke(token_id: str) -> Response:
        if not await anyio.to_thread.run_sync(service.revoke, token_id):
            shown = token_id if _TOKEN_ID_RE.match(token_id) else "(not a token id)"
            trail.record("token_revoked", token_id=shown, status=404)
            raise UpstreamError(404, f"no live token with id {shown!r}")  # never echo a token
        log.info("revoked %s", token_id)
        trail.record("token_revoked", token_id=token_id, status=204)
        return Response(status_code=204)

    def revoke_all(user_id: str) -> tuple[int, bool]:
        known = service.issued_to(user_id)  # asked first: revoking empties the live index
        count = service.revoke_user(user_id)
        return count, known or count > 0

    @app.delete("/users/{user_id}/tokens", dependencies=issuer)
    async def revoke_user(user_id: str) -> Response:
        count, known = await anyio.to_thread.run_sync(revoke_all, user_id)
        log.info("revoked %d tokens of user %s (known here: %s)", count, user_id, known)
        trail.record("user_tokens_revoked", user=user_id, revoked=count, known=known, status=200)
        return JSONResponse({"revoked": count, "known": known}, headers=NO_STORE)

    if isinstance(settings.api_keys, Keyring):
        add_rollover_route(app, settings.api_keys, issuer)
