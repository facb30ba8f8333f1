"""A fast stand-in for the stand-in: canned Messages answers from a raw ASGI app.

    python benchmarks/stub_upstream.py [--port 0]

DESIGN.md's reference figures (the naive FastAPI relay at +0.86 ms) were measured in front
of an upstream like this one, a raw ASGI app on uvicorn that answers in about 0.06 ms,
whereas the local stand-in (``python -m patterns serve upstream``) validates every request
the way the API does and takes about 2 ms. ``benchmarks/bff.py --upstream stub`` runs the
same routes against this stub, so its figures can be set beside DESIGN.md's. It checks
nothing (no key, no validation): the answer is the same canned message every time, streamed
as the Messages API's events when the request asks for ``"stream": true``, with the same
pause between events as the benchmark gives the stand-in, so that chunking is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Final

from starlette.types import Message, Receive, Scope, Send

from patterns.serving import run_in_foreground
from patterns.upstream.streaming import sse

MODEL: Final = "claude-haiku-4-5"
WORDS: Final = ("Hello", " from", " the", " stub", ".", " It", " answers", " at", " once")
_MESSAGE: Final[dict[str, Any]] = {
    "id": "msg_stub",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "".join(WORDS)}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 8, "output_tokens": len(WORDS)},
}
_JSON_HEADERS: Final = [(b"content-type", b"application/json"), (b"request-id", b"req_stub")]
_SSE_HEADERS: Final = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_stub")]


def _answer() -> bytes:
    return json.dumps(_MESSAGE, separators=(",", ":")).encode()


def _events() -> list[bytes]:
    start = {**_MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 8}}
    events = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse("ping", {"type": "ping"}),
    ]
    events += [
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in WORDS
    ]
    events += [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(WORDS)},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def create_app(*, stream_delay: float = 0.002) -> Any:
    """The stub: ``POST /v1/messages`` answered from memory; anything else 404."""
    answer, events = _answer(), _events()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})
            return
        body = await _body(receive)
        if (scope["method"], scope["path"]) != ("POST", "/v1/messages"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            streamed = json.loads(body).get("stream") is True
        except (ValueError, AttributeError):
            streamed = False
        if not streamed:
            await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
            await send({"type": "http.response.body", "body": answer})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(stream_delay)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message: Message = await receive()
        chunks += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stream-delay", type=float, default=0.002, metavar="SECONDS")
    args = parser.parse_args(argv)
    app = create_app(stream_delay=args.stream_delay)
    return run_in_foreground(app, name="Stub upstream", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    sys.exit(main())
