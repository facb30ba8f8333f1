"""What the BFF's Redis stores share: key names, the marker, and failing closed.

The names are the stored data's format: data written by an older version must still be read,
so they never change. Tools that work on a running BFF's Redis (the incident command) import
them (from here or from :mod:`patterns.bff.redis_stores`) rather than spell them again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

from patterns.errors import StoreUnavailable

__all__ = [
    "KEY_PREFIX",
    "LIMIT_PREFIX",
    "MARKER",
    "META_KEY",
    "SESSION_PREFIX",
    "USAGE_PREFIX",
    "USERS_KEY",
    "USER_SESSIONS_PREFIX",
    "chunks",
    "fail_closed",
    "text",
]

#: Key prefixes after ``{namespace}:``; the value part is a session hash or a username.
SESSION_PREFIX: Final = "s:"
USER_SESSIONS_PREFIX: Final = "su:"
KEY_PREFIX: Final = "k:"
USAGE_PREFIX: Final = "u:"
LIMIT_PREFIX: Final = "rl:"
#: Whole keys after ``{namespace}:``: the BFF's marker (value :data:`MARKER`) and its users.
META_KEY: Final = "meta"
USERS_KEY: Final = "users"
MARKER: Final = "patterns-bff/1"

P = ParamSpec("P")
T = TypeVar("T")


def fail_closed(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn any Redis error into StoreUnavailable (the message names no key or URL)."""
    import redis.exceptions

    @wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (redis.exceptions.RedisError, OSError) as error:
            raise StoreUnavailable(
                f"the session store (Redis) is unavailable ({type(error).__name__})"
            ) from None

    return guarded


async def chunks(keys: Any, size: int = 500) -> Any:
    """Group an async iterator of keys into lists of at most ``size``."""
    chunk: list[Any] = []
    async for key in keys:
        chunk.append(key)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def text(value: Any) -> str:
    """A Redis reply as text (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
