"""Two reference floors: relays that check nothing, for ``benchmarks/bff.py`` to run beside
the BFF in the same run.

    python benchmarks/passthrough.py --upstream http://127.0.0.1:8420 [--port 0] [--lean]

- The default, **naive** relay: FastAPI with one shared ``httpx.AsyncClient``, what
  DESIGN.md calls the naive FastAPI proxy (+0.86 ms over a 0.06 ms stub on a quiet 2-core
  machine). It is how a Python proxy is usually written.
- ``--lean``: a raw ASGI app on the BFF's own upstream client
  (:class:`patterns.bff.pool.UpstreamPool`), no framework and no checks. It is what one hop
  through uvicorn costs with nothing else in it, so the BFF's figure *above* it is what the
  BFF's defences and accounting add, and the figure of this relay itself is the hop.

Both forward the body and the caller's credential header as they came, and stream the
answer back. Never deploy either: they check nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.bff.pool import UpstreamPool
from patterns.serving import run_in_foreground

_FORWARDED = ("content-type", "anthropic-version", "x-api-key", "authorization")


def create_app(upstream: str) -> FastAPI:
    """The naive relay: ``POST /v1/messages`` forwarded to ``upstream`` with a shared client."""
    clients: list[httpx.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=upstream, timeout=60) as client:
            clients.append(client)
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        client = clients[0]
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
        outgoing = client.build_request(
            "POST", "/v1/messages", content=await request.body(), headers=headers
        )
        answer = await client.send(outgoing, stream=True)
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
            background=BackgroundTask(answer.aclose),
        )

    return app


def create_lean_app(upstream: str) -> ASGIApp:
    """The lean relay: the same forwarding as raw ASGI over :class:`UpstreamPool`."""
    pools: list[UpstreamPool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(upstream, pools, receive, send)
            return
        if (scope["method"], scope["path"]) != ("POST", "/v1/messages"):
            await _answer(send, 404, b"")
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        wanted = {name.encode() for name in _FORWARDED}
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in wanted}
        answer = await pools[0].post("/v1/messages", bytes(body), headers)
        try:
            kind = answer.headers.get("content-type", "application/json").encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [(b"content-type", kind)],
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    return app


async def _lifespan(upstream: str, pools: list[UpstreamPool], receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            pools.append(UpstreamPool(upstream))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for pool in pools:
                await pool.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--upstream", required=True, metavar="URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lean", action="store_true", help="raw ASGI over UpstreamPool")
    args = parser.parse_args(argv)
    app = create_lean_app(args.upstream) if args.lean else create_app(args.upstream)
    name = "Lean relay" if args.lean else "Passthrough"
    return run_in_foreground(app, name=name, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    sys.exit(main())
