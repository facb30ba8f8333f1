"""Server-sent events in the Messages API's order.

``message_start``, ``content_block_start``, ``ping``, one ``content_block_delta`` per token,
``content_block_stop``, ``message_delta`` (stop reason and cumulative usage) and
``message_stop``. The SDK's ``messages.stream`` helper accumulates exactly these events into
a final message, so a proxy that reorders, buffers or drops them is caught by tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio

from patterns.upstream.envelope import UpstreamError, error_body
from patterns.upstream.faults import Fault
from patterns.upstream.replies import Reply

__all__ = ["StreamDropped", "message_events", "sse"]


class StreamDropped(ConnectionAbortedError):
    """Raised inside the event stream to cut the connection (an injected fault)."""


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One event in the wire format: ``event:``, ``data:`` (compact JSON), blank line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _events(message: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in reply.tokens
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


async def message_events(
    message: dict[str, Any],
    reply: Reply,
    *,
    delay: float,
    fault: Fault | None,
    request_id: str,
) -> AsyncIterator[bytes]:
    """Yield the encoded events, ``delay`` seconds apart between deltas, applying a stream
    fault (drop the connection, or send ``event: error``) after ``fault.after_events``."""
    for number, (name, data) in enumerate(_events(message, reply)):
        if fault is not None and number == fault.after_events:
            if fault.kind == "drop_stream":
                raise StreamDropped("injected fault: connection dropped mid-stream")
            error = UpstreamError(fault.status, fault.message)
            yield sse("error", error_body(error, request_id))
            return
        if name == "content_block_delta" and delay > 0:
            await anyio.sleep(delay)
        yield sse(name, data)
