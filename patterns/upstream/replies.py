"""Deterministic replies and token counts.

The stand-in is not a model: it answers with one of a few short poems about API keys,
chosen by a hash of the request, so the same request always gets the same reply and a
notebook's output is stable. Token counts use one rule everywhere (a word or a punctuation
mark is a token; each message adds a small overhead), so ``count_tokens``, ``usage`` and the
rate limiter agree with each other, as they do on the real API.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Reply", "compose_reply", "count_input_tokens", "count_text_tokens", "split_tokens"]

_TOKEN_RE: Final = re.compile(r"\s*(?:\w+|[^\w\s])")
_MESSAGE_OVERHEAD: Final = 3
_REQUEST_OVERHEAD: Final = 4
_BLOCK_OVERHEAD: Final = 85  # images, documents: a flat stand-in cost

_POEMS: Final = (
    "Keys in the browser\nevery script on the page reads\nwhat the user typed",
    "A header named danger\nopens the door to the world\nread the warning twice",
    "Log lines remember\nwhat the proxy saw in flight\nredact before write",
    "Rotate, then revoke\nan old key left in a tab\nstill spends someone's money",
    "Session ends at noon\nthe key fades from memory\nstrings cannot be wiped",
    "Server holds the key\nthe browser holds a cookie\nthat script cannot read",
    "Rate limits return\ntheir headers on each answer\nmeter what you spend",
    "Fingerprint, not key\nshow eight digits of a hash\nkeep the rest unsaid",
)


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into stand-in tokens; joining them gives back the text (trimmed)."""
    return _TOKEN_RE.findall(text)


def count_text_tokens(text: str) -> int:
    return len(split_tokens(text))


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return count_text_tokens(content)
    total = 0
    if isinstance(content, Sequence):
        for block in content:
            if not isinstance(block, Mapping):
                continue
            text = block.get("text")
            if isinstance(text, str):
                total += count_text_tokens(text)
            elif block.get("type") in {"tool_use", "tool_result"}:
                total += count_text_tokens(json.dumps(block, sort_keys=True))
            else:
                total += _BLOCK_OVERHEAD
    return total


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a validated Messages request (system, messages and tools)."""
    total = _REQUEST_OVERHEAD + _content_tokens(body.get("system") or "")
    for message in body.get("messages", ()):
        total += _MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    if body.get("tools"):
        total += count_text_tokens(json.dumps(body["tools"], sort_keys=True))
    return total


@dataclass(frozen=True, slots=True)
class Reply:
    """What the stand-in answers: text already cut at ``max_tokens`` or a stop sequence."""

    text: str
    tokens: tuple[str, ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        return len(self.tokens)


def compose_reply(body: Mapping[str, Any]) -> Reply:
    """The deterministic reply to a validated Messages request."""
    canonical = json.dumps(
        {k: body.get(k) for k in ("model", "system", "messages")}, sort_keys=True, default=str
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    text = _POEMS[digest[0] % len(_POEMS)]
    stop_reason, stop_sequence = "end_turn", None
    for candidate in body.get("stop_sequences") or ():
        where = text.find(candidate)
        if candidate and where >= 0 and (stop_sequence is None or where < text.find(stop_sequence)):
            stop_reason, stop_sequence = "stop_sequence", candidate
    if stop_sequence is not None:
        text = text[: text.find(stop_sequence)]
    tokens = split_tokens(text)
    if len(tokens) > int(body["max_tokens"]):
        tokens = tokens[: int(body["max_tokens"])]
        stop_reason, stop_sequence = "max_tokens", None
    return Reply(
        text="".join(tokens),
        tokens=tuple(tokens),
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=count_input_tokens(body),
    )
