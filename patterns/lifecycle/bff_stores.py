"""The BFF's key and session stores as the synchronous store protocols of
:func:`~patterns.lifecycle.incidents.user_key_leaked` (re-exported there).

The BFF's stores are async (memory or Redis); a response runs from synchronous code (a
command, a script, a notebook cell). Two checks make "nothing to do" mean what it says:

* **location**: a store that can tell whether it is the BFF's data (the Redis stores look
  for their ``{ns}:meta`` marker) is asked before each step, and the step fails when it is
  not: a wrong database or namespace is not "no key left".
* **the user**: :meth:`AsyncKeyStoreKeys.user_known` and
  :meth:`AsyncSessionStoreSessions.user_known` say whether the store ever saw the user, so
  a run that found nothing anywhere can tell "nothing left" from a mistyped user id.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from patterns.bff.stores import Stores

__all__ = [
    "AsyncKeyStoreKeys",
    "AsyncSessionStoreSessions",
    "bff_user_stores",
    "run_coroutine",
]

T = TypeVar("T")


def run_coroutine(
    make: Callable[[], Awaitable[T]], portal: BlockingPortal | None = None, timeout: float = 60.0
) -> T:
    """Run an async store call to completion from synchronous code.

    With ``portal`` (:func:`anyio.from_thread.start_blocking_portal`), on its event loop:
    what a Redis client needs when several calls share it, since its connections belong to
    one loop. Without, on a new loop: here if this thread runs none, else (Jupyter runs one
    in the kernel's thread) in a short-lived thread of its own.
    """
    if portal is not None:
        return portal.call(make)

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    outcome: list[T] = []
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            outcome.append(asyncio.run(main()))
        except BaseException as error:  # handed to the caller below
            failure.append(error)

    thread = threading.Thread(target=worker, name="incident-store-call", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the store did not answer within {timeout} s")
    if failure:
        raise failure[0]
    return outcome[0]


class _AsyncDeleter(Protocol):
    async def delete(self, username: str) -> bool: ...


class _AsyncSessionEnder(Protocol):
    async def end_user_sessions(self, username: str) -> int: ...


async def _verified(store: object, action: Callable[[], Awaitable[T]]) -> T:
    """``action``, after the store's ``verify_location`` if it has one (raises when the
    store is not the BFF's data)."""
    verify = getattr(store, "verify_location", None)
    if verify is not None:
        await verify()
    return await action()


async def _known(store: object, user_id: str) -> bool | None:
    ask = getattr(store, "user_known", None)
    if ask is None:
        return None
    return bool(await ask(user_id))


class AsyncKeyStoreKeys:
    """:class:`~patterns.lifecycle.incidents.UserKeys` over a store whose ``delete(user)``
    is a coroutine, such as the BFF's ``KeyStore`` (memory or Redis). See
    :func:`run_coroutine` for ``portal``."""

    def __init__(self, store: _AsyncDeleter, *, portal: BlockingPortal | None = None) -> None:
        self.store = store
        self.portal = portal

    def delete_user_key(self, user_id: str) -> bool:
        return run_coroutine(
            lambda: _verified(self.store, lambda: self.store.delete(user_id)), self.portal
        )

    def user_known(self, user_id: str) -> bool | None:
        """True if the store ever held a key of ``user_id``; None if it cannot say."""
        return run_coroutine(lambda: _known(self.store, user_id), self.portal)


class AsyncSessionStoreSessions:
    """:class:`~patterns.lifecycle.incidents.UserSessions` over the BFF's ``SessionStore``
    (memory or Redis): every session of the user is deleted at once, so each of their
    cookies gets 401 from then on."""

    def __init__(
        self,
        store: _AsyncSessionEnder,
        *,
        portal: BlockingPortal | None = None,
        scan_unindexed: bool = False,
    ) -> None:
        self.store = store
        self.portal = portal
        self.scan_unindexed = scan_unindexed

    def end_user_sessions(self, user_id: str) -> int:
        """End the user's indexed sessions; with ``scan_unindexed``, then also those a scan
        of every session finds outside the index (see the Redis store's
        ``end_unindexed_sessions``; a store without it has no such sessions)."""

        async def end() -> int:
            ended = await self.store.end_user_sessions(user_id)
            sweep = getattr(self.store, "end_unindexed_sessions", None)
            if self.scan_unindexed and sweep is not None:
                ended += int(await sweep(user_id))
            return ended

        return run_coroutine(lambda: _verified(self.store, end), self.portal)

    def user_known(self, user_id: str) -> bool | None:
        """True if ``user_id`` ever signed in here; None if the store cannot say."""
        return run_coroutine(lambda: _known(self.store, user_id), self.portal)


def bff_user_stores(
    stores: Stores, *, portal: BlockingPortal | None = None, scan_unindexed: bool = False
) -> tuple[AsyncKeyStoreKeys, AsyncSessionStoreSessions]:
    """The ``keys=`` and ``sessions=`` of
    :func:`~patterns.lifecycle.incidents.user_key_leaked` for a BFF's stores.

    For a BFF running in this process with memory stores, pass ``bff_of(app).stores``. For
    Redis, build the stores for the response itself (``redis_stores(url)``, same namespace)
    and pass a portal: the app's own Redis client belongs to the server's event loop.
    ``scan_unindexed`` also ends sessions outside the per-user index (from before it).
    """
    return AsyncKeyStoreKeys(stores.keys, portal=portal), AsyncSessionStoreSessions(
        stores.sessions, portal=portal, scan_unindexed=scan_unindexed
    )
