"""The package's one error hierarchy.

Every failure a pattern can report is a :class:`PatternError`. Subclasses name a failure
*class* (decryption, KMS, token, ...), never which internal check failed: like
``cryptography``'s ``InvalidTag``, an opaque error gives an attacker nothing to probe, and a
caller only needs to know what to do next. Messages never contain secret material; tests
check that with canary keys.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DecryptionError",
    "InvalidKeyError",
    "InvalidRequestError",
    "KmsError",
    "PatternError",
    "ServingError",
    "StoreUnavailable",
    "TokenRejected",
    "TokenScopeError",
]


class PatternError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(PatternError):
    """A setting is missing or out of bounds; the message names the setting and the fix."""


class InvalidKeyError(PatternError, ValueError):
    """A value offered as an API key is empty or malformed (the message never repeats it)."""


class InvalidRequestError(PatternError, ValueError):
    """A caller's parameters are out of bounds; the message names the parameter and limit."""


class DecryptionError(PatternError):
    """Encrypted data could not be opened.

    Raised alike for a wrong password, a tampered byte, a wrong context and malformed input,
    so that the error reveals nothing about which check failed.
    """


class KmsError(PatternError):
    """A key-management operation failed (key disabled or destroyed, backend unreachable)."""


class TokenRejected(PatternError):
    """A temporary token is unknown, expired, revoked or used up."""


class TokenScopeError(TokenRejected):
    """A valid temporary token was used outside its scope (model, max_tokens)."""


class StoreUnavailable(PatternError):
    """A backing store (sessions, tokens, keys) cannot be reached; callers must fail closed."""


class ServingError(PatternError):
    """A background server could not start or stop."""
