"""The backend-for-frontend: the browser holds a session cookie, the server holds the key.

>>> from patterns.bff import BffSettings, UserDirectory, create_app
>>> users = UserDirectory(); users.add("alice", "correct horse battery")
>>> app = create_app(BffSettings(upstream_url="http://127.0.0.1:8420"), users=users)

A user signs in (``POST /auth/login``: Argon2id-hashed passwords, a ``__Host-session``
cookie that is Secure, HttpOnly and SameSite=Strict, a CSRF token in the answer), stores
their own key once (``PUT /keys/anthropic``: sealed with Pattern 3 before it is stored) and
calls ``POST /claude/messages`` (validated, rate limited, forwarded with their key,
streamed through). Modules: :mod:`.settings`, :mod:`.passwords`, :mod:`.stores` and
:mod:`.redis_stores` (built from :mod:`.redis_common`, :mod:`.redis_sessions` and
:mod:`.redis_records`), :mod:`.ratelimit` (the ``limits`` library), :mod:`.vault`,
:mod:`.validation`, :mod:`.security`, :mod:`.pool` (the upstream connection pool),
:mod:`.proxy`, :mod:`.messages`, :mod:`.counting` (``count_tokens``), :mod:`.routes`,
:mod:`.context`, :mod:`.monitoring`, :mod:`.app`, :mod:`.cli` (``python -m patterns serve
bff``), :mod:`.client` (the official SDK pointed at a BFF) and :mod:`.lab` (the notebook's
attack lab).
"""

from patterns.bff.app import create_app
from patterns.bff.context import Bff, bff_of
from patterns.bff.monitoring import AnomalyDetector, AuditTrail
from patterns.bff.passwords import Argon2Parameters, UserDirectory
from patterns.bff.redis_stores import redis_stores
from patterns.bff.settings import COOKIE_NAME, BffSettings, Defences, RateLimit
from patterns.bff.stores import Stores, Usage, memory_stores
from patterns.bff.vault import KeyVault, key_context

__all__ = [
    "COOKIE_NAME",
    "AnomalyDetector",
    "Argon2Parameters",
    "AuditTrail",
    "Bff",
    "BffSettings",
    "Defences",
    "KeyVault",
    "RateLimit",
    "Stores",
    "Usage",
    "UserDirectory",
    "bff_of",
    "create_app",
    "key_context",
    "memory_stores",
    "redis_stores",
]
