"""What a browser may ask the BFF to send upstream: an allowlist, checked by pydantic.

The guide's BFF forwards ``req.body.messages`` as it came. Here the body must be a Messages
request with known fields only (``extra="forbid"``), a model from the configured allowlist, a
``max_tokens`` at or under the cap and text content only; the proxy forwards the *validated*
object re-serialised, never the raw bytes, so an unchecked field (``tools``, ``mcp_servers``,
a huge ``metadata``) cannot ride along. The size limit is checked on the raw body first.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patterns.upstream.envelope import UpstreamError

__all__ = [
    "CountTokensRequest",
    "MessagesRequest",
    "check_count_request",
    "check_request",
    "parse_body",
]

_Text = Annotated[str, Field(max_length=200_000)]


class TextBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: _Text


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: _Text | Annotated[list[TextBlock], Field(min_length=1, max_length=100)]


class MessagesRequest(BaseModel):
    """The allowlisted subset of the Messages API a chat front end needs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(max_length=128)
    max_tokens: int = Field(ge=1)
    messages: list[Message] = Field(min_length=1, max_length=200)
    system: _Text | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1, le=500)
    stop_sequences: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, max_length=8
    )

    def upstream_body(self) -> bytes:
        """The JSON sent upstream: only the validated fields, None ones left out."""
        return self.model_dump_json(exclude_none=True).encode()


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 in the Anthropic envelope."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # deeply nested JSON exhausts the parser's stack
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamError(400, "the body must be a JSON object (a Messages API request)")
    return payload


class CountTokensRequest(BaseModel):
    """What ``count_tokens`` may be asked about: the same messages and system prompt as a
    Messages request, nothing else (no tools, no ``max_tokens``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(max_length=128)
    messages: list[Message] = Field(min_length=1, max_length=200)
    system: _Text | None = None

    def upstream_body(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


_Request = TypeVar("_Request", "MessagesRequest", "CountTokensRequest")


def _validated(
    model: type[_Request], payload: dict[str, Any], allowed_models: tuple[str, ...]
) -> _Request:
    """``payload`` as ``model``, with an allowed model; errors name the field and the rule,
    never echo values."""
    try:
        request = model.model_validate(payload)
    except ValidationError as error:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item["loc"]) or "body"
            problems.append(f"{where}: {item['type'].replace('_', ' ')}")
        raise UpstreamError(400, "invalid request: " + "; ".join(problems)) from None
    if request.model not in allowed_models:
        raise UpstreamError(
            400, f"model: not allowed here; this service allows {', '.join(allowed_models)}"
        )
    return request


def check_request(
    payload: dict[str, Any], *, allowed_models: tuple[str, ...], max_tokens_cap: int
) -> MessagesRequest:
    """Validate a Messages request (fields, model, ``max_tokens`` cap)."""
    request = _validated(MessagesRequest, payload, allowed_models)
    if request.max_tokens > max_tokens_cap:
        raise UpstreamError(400, f"max_tokens: at most {max_tokens_cap} here")
    return request


def check_count_request(
    payload: dict[str, Any], *, allowed_models: tuple[str, ...]
) -> CountTokensRequest:
    """Validate a ``count_tokens`` request (fields, model)."""
    return _validated(CountTokensRequest, payload, allowed_models)
