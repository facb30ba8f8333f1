"""Detection rules for Anthropic secrets, and redaction of text.

The rules follow the formats that public secret scanners use for Anthropic keys (see
``docs/key-formats.md``). A match is displayed by its fingerprint
(``sk-ant-api03-…x7AA (sha256:1a2b3c4d)``), never by the key itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from patterns.keys import FAKE_MARKERS, describe_secret

__all__ = [
    "RULES",
    "Match",
    "Rule",
    "Scanner",
    "default_scanner",
    "find_secrets",
    "is_fake",
    "redact",
]

# No left boundary: the prefixes are distinctive, and text that was repr'd or JSON-encoded
# glues a key to the escape before it (``"line\\nsk-ant-..."``). A boundary there let such
# keys through redaction; failing closed costs at most a rare false positive.
_BEFORE: Final = ""
_AFTER: Final = r"(?![A-Za-z0-9_-])"
_BODY: Final = r"[A-Za-z0-9_-]"


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule: an identifier for reports and the regular expression it uses."""

    id: str
    description: str
    pattern: str
    literal: str = ""  # text every match contains, so text without it is skipped at C speed


#: Rules in priority order: at any position the first rule that matches wins, so an exact
#: key format is reported by its own rule and only leftovers fall to ``anthropic-key-like``.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "anthropic-api-key",
        "Anthropic API key (sk-ant-api03-)",
        rf"{_BEFORE}sk-ant-api03-{_BODY}{{93}}AA{_AFTER}",
        "sk-ant-",
    ),
    Rule(
        "anthropic-admin-key",
        "Anthropic Admin API key (sk-ant-admin01-)",
        rf"{_BEFORE}sk-ant-admin01-{_BODY}{{93}}AA{_AFTER}",
        "sk-ant-",
    ),
    Rule(
        "anthropic-oauth-access-token",
        "Anthropic OAuth access token (sk-ant-oat01-)",
        rf"{_BEFORE}sk-ant-oat01-{_BODY}{{40,}}",
        "sk-ant-",
    ),
    Rule(
        "anthropic-oauth-refresh-token",
        "Anthropic OAuth refresh token (sk-ant-ort01-)",
        rf"{_BEFORE}sk-ant-ort01-{_BODY}{{40,}}",
        "sk-ant-",
    ),
    Rule(
        "patterns-temporary-token",
        "Temporary token minted by this project's token proxy (akp_tmp_)",
        rf"{_BEFORE}akp_tmp_{_BODY}{{43}}{_AFTER}",
        "akp_tmp_",
    ),
    Rule(
        "anthropic-key-like",
        "Truncated, extended or unknown-version Anthropic secret (sk-ant-...)",
        rf"{_BEFORE}sk-ant-[a-z]+[0-9]{{2}}-{_BODY}{{20,}}",
        "sk-ant-",
    ),
)

# Credentials in HTTP header dumps (``x-api-key: ...``, ``('authorization', 'Bearer ...')``):
# redacted from logs whatever their format, because httpx masks only Authorization headers.
_HEADER_VALUE_RE: Final = re.compile(
    r"(?i)((?:x-api-key|api[_-]?key)['\"]?\s*[:=,]\s*b?['\"]?"
    r"|authorization['\"]?\s*[:=,]\s*b?['\"]?(?:bearer|basic)\s+)"
    r"(?!\[REDACTED)([^\s'\",;})\]]+)"
)


def is_fake(value: str) -> bool:
    """True when a key-shaped value carries a marker that says it is not a real key."""
    return any(marker in value for marker in FAKE_MARKERS)


@dataclass(frozen=True, slots=True)
class Match:
    """A secret found in a piece of text (holds the value: keep it inside this package)."""

    rule: Rule
    start: int
    end: int
    value: str = field(repr=False)  # a failing assert or a notebook must not print it

    @property
    def display(self) -> str:
        return describe_secret(self.value)


class Scanner:
    """A compiled set of rules; :data:`RULES` by default."""

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        self.rules = tuple(rules)
        combined = "|".join(f"(?P<r{i}>{rule.pattern})" for i, rule in enumerate(self.rules))
        self._regex = re.compile(combined)
        literals = {rule.literal for rule in self.rules}
        self._literals = tuple(literals) if all(literals) else ()

    def _may_match(self, text: str) -> bool:
        return not self._literals or any(literal in text for literal in self._literals)

    def matches(self, text: str) -> Iterator[Match]:
        """Yield every secret in ``text``, fakes included, in order of position."""
        if not self._may_match(text):
            return
        for found in self._regex.finditer(text):
            index = int(found.lastgroup[1:]) if found.lastgroup else 0
            yield Match(self.rules[index], found.start(), found.end(), found.group(0))

    def redact(self, text: str) -> str:
        """Replace every secret, fake or real, and every credential header value."""
        redacted = text
        if self._may_match(text):
            redacted = self._regex.sub(lambda m: f"[REDACTED {describe_secret(m.group(0))}]", text)
        return _HEADER_VALUE_RE.sub(lambda m: m.group(1) + "[REDACTED]", redacted)


default_scanner: Final = Scanner()


def find_secrets(text: str, *, include_fakes: bool = False) -> list[Match]:
    """Return the secrets in ``text``; marked fakes are left out unless ``include_fakes``."""
    return [m for m in default_scanner.matches(text) if include_fakes or not is_fake(m.value)]


def redact(text: str) -> str:
    """Return ``text`` with every key-shaped string and credential header value replaced."""
    return default_scanner.redact(text)
