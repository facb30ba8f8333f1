"""``POST /claude/messages/count_tokens``: what a prompt would cost, before it is sent.

The Messages API's token counter, reached through the BFF with the user's own key, so that
the official SDK's ``client.messages.count_tokens(...)`` works against ``<bff>/claude`` like
``messages.create`` does. It gets the same defences as a message: Origin, session and CSRF;
a per-user rate limit (a bucket of its own: counting spends no tokens, but every call is an
upstream request made with the user's key); the same allowlist of fields and models and the
same body cap. It is audited, and charged to neither the usage nor the budget. The answer is
rebuilt from the upstream's ``input_tokens`` alone, so nothing else the upstream might add
reaches the browser.
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from patterns.bff.context import bff_of, signed_in
from patterns.bff.messages import enforce_rate_limit, read_body, stored_key
from patterns.bff.proxy import open_upstream, upstream_error
from patterns.bff.validation import check_count_request, parse_body
from patterns.upstream.envelope import UpstreamError

__all__ = ["PATHS", "count_tokens", "router"]

router = APIRouter()

#: Both spellings, as for messages: the SDK appends ``/v1/messages/count_tokens``.
PATHS: Final = ("/claude/messages/count_tokens", "/claude/v1/messages/count_tokens")


async def count_tokens(request: Request) -> Response:
    bff = bff_of(request.app)
    settings = bff.settings
    request_id = bff.request_id()
    request.state.request_id = request_id
    who = await signed_in(request, changes_state=True)
    await enforce_rate_limit(bff, who, "count_tokens")
    payload = parse_body(await read_body(request, settings.max_body_bytes))
    call = check_count_request(payload, allowed_models=settings.allowed_models)
    key, fingerprint = await stored_key(bff, who)
    assert bff.upstream is not None, "the app's lifespan did not run"
    upstream = await open_upstream(
        bff.upstream,
        call.upstream_body(),
        key,
        settings.anthropic_version,
        path="/v1/messages/count_tokens",
    )
    event = {"user": who.username, "key_fingerprint": fingerprint, "model": call.model}
    upstream_id = upstream.headers.get("request-id")
    if upstream.status_code >= 400:
        error = await upstream_error(upstream)
        bff.audit.record("count_tokens", **event, status=error.status, request_id=request_id)
        raise error
    try:
        raw = await upstream.aread()
    finally:
        await upstream.aclose()
    try:
        counted = json.loads(raw)["input_tokens"]
    except (ValueError, KeyError, TypeError):
        counted = None
    if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
        raise UpstreamError(500, "the Anthropic API's answer could not be read; try again")
    bff.audit.record(
        "count_tokens",
        **event,
        input_tokens=counted,
        status=200,
        request_id=request_id,
        upstream_request_id=upstream_id,
    )
    headers = {"request-id": request_id}
    if upstream_id:
        headers["upstream-request-id"] = upstream_id
    return JSONResponse({"input_tokens": counted}, headers=headers)


for _path in PATHS:
    router.add_api_route(_path, count_tokens, methods=["POST"])
