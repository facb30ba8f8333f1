"""The source guide's ``TemporaryTokenService``, ported to Python for the demonstrations.

Do not use it. It is kept, behaviour for behaviour, so notebook 06 can show its flaws:

- the raw API key and the raw token sit together in the map, so a dump of the store (a heap
  snapshot, a Redis ``MONITOR``, a backup) hands out both;
- the use counter is read, checked and written back in separate steps. In one Node.js process
  that happens to be safe (one handler runs at a time); but a map in one process does not
  survive a restart or scale past one replica, and the moment it moves to a shared store,
  concurrent requests all read the same count and all pass;
- every token gets its own cleanup timer.

``SharedMap`` stands in for that shared store: each ``get`` and ``set`` is a round trip during
which other requests run.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["GuideTokenService", "SharedMap"]


class SharedMap:
    """A key-value store reached over the network: every call yields to other tasks."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)  # the request is on the wire; other handlers run meanwhile
        value = self.data.get(key)
        return copy.deepcopy(value) if value is not None else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.data[key] = copy.deepcopy(value)

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        self.data.pop(key, None)


class GuideTokenService:
    """The guide's design: ``generate_temporary_token(user_id, api_key)`` and
    ``validate_token(token)``, 15-minute tokens with 100 uses, one timer per token."""

    def __init__(self, store: SharedMap | None = None, *, clock: Callable[[], float] = time.time):
        self.tokens = store or SharedMap()
        self.token_expiration = 15 * 60.0
        self.clock = clock
        self.timers: list[asyncio.TimerHandle] = []

    async def generate_temporary_token(self, user_id: str, api_key: str) -> str:
        token = str(uuid.uuid4())
        await self.tokens.set(
            token,
            {
                "userId": user_id,
                "apiKey": api_key,  # the raw key, next to the raw token
                "expiresAt": self.clock() + self.token_expiration,
                "usageCount": 0,
                "maxUsage": 100,
            },
        )
        loop = asyncio.get_running_loop()  # one timer per token, as setTimeout does
        self.timers.append(
            loop.call_later(
                self.token_expiration, lambda: loop.create_task(self.tokens.delete(token))
            )
        )
        return token

    async def validate_token(self, token: str) -> dict[str, Any] | None:
        data = await self.tokens.get(token)  # read ...
        if data is None:
            return None
        if self.clock() > data["expiresAt"]:
            await self.tokens.delete(token)
            return None
        if data["usageCount"] >= data["maxUsage"]:  # ... check ...
            await self.tokens.delete(token)
            return None
        data["usageCount"] += 1
        await self.tokens.set(token, data)  # ... write back: too late, others read the old count
        return data

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
