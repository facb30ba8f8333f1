"""The reference floor: a bare FastAPI relay with one shared ``httpx.AsyncClient``.

    python benchmarks/passthrough.py --upstream http://127.0.0.1:8420 [--port 0]

No session, no checks, no accounting: the request body and the caller's credential header go
upstream as they came, and the answer comes back streamed. It is what DESIGN.md calls the
naive FastAPI proxy (+0.86 ms over a 0.06 ms stub on a quiet 2-core machine), so
``benchmarks/bff.py`` runs it in the same run as the BFF: the BFF's cost *above* this floor
is what its defences and accounting add. Never deploy it: it checks nothing.
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

from patterns.serving import run_in_foreground

_FORWARDED = ("content-type", "anthropic-version", "x-api-key", "authorization")


def create_app(upstream: str) -> FastAPI:
    """The relay: ``POST /v1/messages`` forwarded to ``upstream`` with a shared client."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--upstream", required=True, metavar="URL")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return run_in_foreground(
        create_app(args.upstream), name="Passthrough", host="127.0.0.1", port=args.port
    )


if __name__ == "__main__":
    sys.exit(main())
