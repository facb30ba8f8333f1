"""Validation of Messages requests, with the real API's error shapes and wording.

A proxy that forwards a malformed body must see the same 400 it would get in production, and
a request naming a retired model the same 404, so the stand-in checks what the real API
checks: required fields, types, roles, ``max_tokens`` against the model's limit, and fields
it does not know (the real API rejects them rather than ignoring a typo).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from patterns.models import ModelEntry, find_model
from patterns.upstream.envelope import UpstreamError

__all__ = ["MESSAGE_FIELDS", "parse_json_body", "resolve_model", "validate_messages_request"]

#: Top-level fields of ``POST /v1/messages`` (the SDK's MessageCreateParams, plus ``stream``
#: and the sampling parameters).
MESSAGE_FIELDS: Final = frozenset(
    {
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "max_tokens",
        "mcp_servers",
        "messages",
        "metadata",
        "model",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "temperature",
        "thinking",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
        "user_profile_id",
        "workspace_id",
    }
)
#: ``count_tokens`` takes the request without generation settings.
COUNT_FIELDS: Final = MESSAGE_FIELDS - {
    "max_tokens",
    "stream",
    "stop_sequences",
    "temperature",
    "top_k",
    "top_p",
    "metadata",
    "service_tier",
    "inference_geo",
    "container",
    "mcp_servers",
}


def _bad(message: str) -> UpstreamError:
    return UpstreamError(400, message)


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad("There was an error parsing the body of your request as JSON.") from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    return body


def resolve_model(model: object) -> ModelEntry:
    """The catalog entry named by ``model``; 404 ``model: <id>`` when unknown or retired."""
    if model is None:
        raise _bad("model: Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model: Input should be a valid string")
    entry = find_model(model)
    if entry is None or not entry.usable:
        raise UpstreamError(404, f"model: {model[:100]}")
    return entry


def _check_content(content: object, where: str) -> None:
    if content is None:
        raise _bad(f"{where}: Field required")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"{where}: Input should be a valid string or a list of content blocks")
    for index, block in enumerate(content):
        place = f"{where}.{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _bad(f"{place}.type: Field required")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise _bad(f"{place}.text: Field required")
        if block["type"] == "text" and not block["text"]:
            raise _bad(f"{place}: text content blocks must be non-empty")


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _bad("messages: Field required")
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{index}: Input should be a valid dictionary")
        if message.get("role") not in {"user", "assistant", "system"}:
            raise _bad(f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'")
        _check_content(message.get("content"), f"messages.{index}.content")
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            raise _bad(f"messages.{index}.{extra[0]}: Extra inputs are not permitted")


def _check_number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name}: Input should be a valid number")
    if value < low:
        raise _bad(f"{name}: Input should be greater than or equal to {low:g}")
    if value > high:
        raise _bad(f"{name}: Input should be less than or equal to {high:g}")


def _check_common(body: Mapping[str, Any], allowed: frozenset[str]) -> ModelEntry:
    extra = sorted(set(body) - allowed)
    if extra:
        raise _bad(f"{extra[0]}: Extra inputs are not permitted")
    entry = resolve_model(body.get("model"))
    _check_messages(body.get("messages"))
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _check_content(system, "system")
    return entry


def validate_messages_request(body: Mapping[str, Any], *, counting: bool = False) -> ModelEntry:
    """Check a ``/v1/messages`` (or, with ``counting``, a ``count_tokens``) body.

    Returns the model's catalog entry; raises :class:`UpstreamError` (400 or 404) otherwise.
    """
    if counting:
        return _check_common(body, COUNT_FIELDS)
    entry = _check_common(body, MESSAGE_FIELDS)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _bad("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _bad("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _bad("max_tokens: Input should be greater than or equal to 1")
    if max_tokens > entry.max_tokens:
        raise _bad(
            f"max_tokens: {max_tokens} > {entry.max_tokens}, which is the maximum allowed "
            f"number of output tokens for {entry.id}"
        )
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise _bad("stop_sequences: Input should be a valid list of strings")
    _check_number(body, "temperature", 0.0, 1.0)
    _check_number(body, "top_p", 0.0, 1.0)
    _check_number(body, "top_k", 0, 1_000_000)
    return entry
