"""Temporary tokens: short-lived, scoped, usage-limited stand-ins for an API key.

``TokenService(MemoryTokenStore())`` in one process; ``RedisTokenStore`` for replicas behind
a load balancer. See notebook 06.
"""

from patterns.tokens.memory import MemoryTokenStore
from patterns.tokens.model import TOKEN_PREFIX, Grant, Minted, TokenRecord
from patterns.tokens.redis_store import RedisTokenStore
from patterns.tokens.service import TokenService, TokenStore

__all__ = [
    "TOKEN_PREFIX",
    "Grant",
    "MemoryTokenStore",
    "Minted",
    "RedisTokenStore",
    "TokenRecord",
    "TokenService",
    "TokenStore",
]
