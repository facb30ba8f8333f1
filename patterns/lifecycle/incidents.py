"""Incident response, one function per scenario. Each is idempotent (running it again finds
nothing left to do and says so), reports every step it took, and writes an audit record.

* :func:`user_key_leaked`: revoke the user's temporary tokens, delete their stored key, end
  their sessions. The stores are small protocols (:class:`UserTokens`, :class:`UserKeys`,
  :class:`UserSessions`): :class:`~patterns.tokens.TokenService` already is a
  ``UserTokens``; :class:`AsyncKeyStoreKeys` and :class:`AsyncSessionStoreSessions` adapt the
  BFF's key and session stores (memory or Redis), and :func:`bff_user_stores` makes both from
  a running BFF's stores (``bff_user_stores(bff_of(app).stores)``). :data:`NOT_DEPLOYED`
  says a store does not exist in this deployment (no token proxy, say), which is not the
  same as not handing it over.
* :func:`org_key_leaked`: roll the token proxy's organisation key over with no grace and
  revoke every token minted under the old key.
* :func:`kms_key_compromised`: rotate the customer key past the compromised version,
  rewrap every stored secret, then retire the compromised versions, in that order: a
  version is never retired while a secret still needs it.

The user must still revoke a leaked Anthropic key in the Console: no code can do that for
them, and every report says so.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeVar, runtime_checkable

from patterns.errors import ConfigurationError, KmsError, PatternError
from patterns.keys import ApiKey
from patterns.kms import AuditLog, Kms
from patterns.lifecycle.rotation import rewrap_store
from patterns.lifecycle.sealed import SealedStore
from patterns.tokens.keyring import Keyring

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from patterns.bff.stores import Stores

__all__ = [
    "NOT_DEPLOYED",
    "AsyncKeyStoreKeys",
    "AsyncSessionStoreSessions",
    "IncidentReport",
    "Outcome",
    "Step",
    "UserKeys",
    "UserSessions",
    "UserTokens",
    "bff_user_stores",
    "kms_key_compromised",
    "org_key_leaked",
    "user_key_leaked",
]

Outcome = Literal["done", "nothing to do", "skipped", "failed"]
_CONSOLE: Final = (
    "revoke the leaked key in the Anthropic Console (Settings > API keys) if not done yet"
)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a response and what came of it."""

    action: str
    outcome: Outcome
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.outcome}] {self.action}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class IncidentReport:
    """What a response did; ``changed`` is False when a rerun found everything done."""

    scenario: str
    subject: str
    steps: list[Step] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(step.outcome == "done" for step in self.steps)

    @property
    def ok(self) -> bool:
        """Contained: no step failed *or was skipped*. A store nobody handed the response
        (the BFF's key or session store, say) may still hold what leaked."""
        return not any(step.outcome in ("failed", "skipped") for step in self.steps)

    def lines(self) -> list[str]:
        head = f"{self.scenario} ({self.subject}): " + (
            "contained" if self.ok else "NOT fully contained"
        )
        return [head, *(f"  {step}" for step in self.steps), *(f"  todo: {m}" for m in self.manual)]


@runtime_checkable
class UserTokens(Protocol):
    """Revokes a user's temporary tokens (:class:`~patterns.tokens.TokenService` is one)."""

    def revoke_user(self, user_id: str) -> int: ...


@runtime_checkable
class UserKeys(Protocol):
    """Deletes a user's stored (sealed) key; True if there was one."""

    def delete_user_key(self, user_id: str) -> bool: ...


@runtime_checkable
class UserSessions(Protocol):
    """Ends every session of a user; returns how many."""

    def end_user_sessions(self, user_id: str) -> int: ...


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


class AsyncKeyStoreKeys:
    """:class:`UserKeys` over a store whose ``delete(user)`` is a coroutine, such as the
    BFF's ``KeyStore`` (memory or Redis). Call it from synchronous code (a command, a
    script, a notebook cell): see :func:`run_coroutine` for ``portal``."""

    def __init__(self, store: _AsyncDeleter, *, portal: BlockingPortal | None = None) -> None:
        self.store = store
        self.portal = portal

    def delete_user_key(self, user_id: str) -> bool:
        return run_coroutine(lambda: self.store.delete(user_id), self.portal)


class AsyncSessionStoreSessions:
    """:class:`UserSessions` over the BFF's ``SessionStore`` (memory or Redis): every session
    of the user is deleted at once, so each of their cookies gets 401 from then on."""

    def __init__(self, store: _AsyncSessionEnder, *, portal: BlockingPortal | None = None) -> None:
        self.store = store
        self.portal = portal

    def end_user_sessions(self, user_id: str) -> int:
        return run_coroutine(lambda: self.store.end_user_sessions(user_id), self.portal)


def bff_user_stores(
    stores: Stores, *, portal: BlockingPortal | None = None
) -> tuple[AsyncKeyStoreKeys, AsyncSessionStoreSessions]:
    """The ``keys=`` and ``sessions=`` of :func:`user_key_leaked` for a BFF's stores.

    For a BFF running in this process with memory stores, pass ``bff_of(app).stores``. For
    Redis, build the stores for the response itself (``redis_stores(url)``, same namespace)
    and pass a portal: the app's own Redis client belongs to the server's event loop.
    """
    return AsyncKeyStoreKeys(stores.keys, portal=portal), AsyncSessionStoreSessions(
        stores.sessions, portal=portal
    )


class _NotDeployed:
    """A store this deployment does not have: every step on it has nothing to do."""

    def revoke_user(self, user_id: str) -> int:
        return 0

    def delete_user_key(self, user_id: str) -> bool:
        return False

    def end_user_sessions(self, user_id: str) -> int:
        return 0

    def __repr__(self) -> str:
        return "NOT_DEPLOYED"


#: Pass for a store that does not exist here (``tokens=NOT_DEPLOYED`` with no token proxy):
#: its step reads "nothing to do: not deployed" instead of "skipped".
NOT_DEPLOYED: Final = _NotDeployed()


def _audit(
    audit: AuditLog | None, actor: str, report: IncidentReport, context: Mapping[str, str]
) -> None:
    if audit is None:
        return
    audit.record(
        actor=actor,
        operation=f"incident.{report.scenario}",
        backend="lifecycle",
        key_id=None,
        key_version=None,
        context=dict(context),
        outcome="ok" if report.ok else "error",
        error=None
        if report.ok
        else "; ".join(str(s) for s in report.steps if s.outcome == "failed"),
    )


def _count_step(action: str, count: int | bool | None, noun: str, store: object = None) -> Step:
    if store is NOT_DEPLOYED:
        return Step(action, "nothing to do", f"no {noun} store in this deployment")
    if count is None:
        return Step(action, "skipped", f"no {noun} store given")
    if count:
        return Step(action, "done", f"{int(count)} {noun}(s)")
    return Step(action, "nothing to do", f"no {noun} left")


S = TypeVar("S")


def _need(store: S | None) -> S:
    assert store is not None
    return store


def user_key_leaked(
    user_id: str,
    *,
    tokens: UserTokens | None = None,
    keys: UserKeys | None = None,
    sessions: UserSessions | None = None,
    audit: AuditLog | None = None,
    actor: str = "incident-response",
) -> IncidentReport:
    """Contain a leak of ``user_id``'s Anthropic key: nothing minted from it, stored for it
    or signed in as them keeps working. Stores not given are reported as skipped (and the
    report is then not "contained"); pass :data:`NOT_DEPLOYED` for one that does not exist.

    Sessions are ended after the key is deleted: a sign-in racing the response gets a
    session with no key to spend. It is a new session, though; if the password leaked too,
    change it as well."""
    report = IncidentReport("user-key-leaked", f"user {user_id}")
    steps: list[tuple[str, str, object, Callable[[], int | bool]]] = [
        ("revoke temporary tokens", "token", tokens, lambda: _need(tokens).revoke_user(user_id)),
        ("delete the stored key", "key", keys, lambda: _need(keys).delete_user_key(user_id)),
        ("end sessions", "session", sessions, lambda: _need(sessions).end_user_sessions(user_id)),
    ]
    for action, noun, store, act in steps:
        if store is None:
            report.steps.append(_count_step(action, None, noun))
            continue
        try:  # one store down fails its step; the others still run (rerun to finish)
            report.steps.append(_count_step(action, act(), noun, store))
        except PatternError as error:
            report.steps.append(Step(action, "failed", str(error)))
    report.manual.append(f"ask the user to {_CONSOLE}, then to enter a new key")
    _audit(audit, actor, report, {"user": user_id})
    return report


def org_key_leaked(
    keyring: Keyring,
    new_key: ApiKey,
    *,
    audit: AuditLog | None = None,
    actor: str = "incident-response",
) -> IncidentReport:
    """Roll the organisation key over to ``new_key`` at once and revoke every token minted
    under an older version (they get 401 on their next request)."""
    report = IncidentReport("org-key-leaked", f"keyring {keyring.current_ref}")
    rollover = keyring.rollover(new_key, grace=0, revoke_previous=True)
    report.steps.append(
        Step(
            "roll over the organisation key",
            "done" if rollover.rolled_over else "nothing to do",
            f"now {rollover.current_ref} ({rollover.current_fingerprint})",
        )
    )
    report.steps.append(
        Step(
            "revoke tokens of older key versions",
            "done" if rollover.revoked_refs else "nothing to do",
            ", ".join(rollover.revoked_refs) or "none left",
        )
    )
    report.subject = f"keyring now at {rollover.current_ref}"
    report.manual.append(_CONSOLE)
    _audit(audit, actor, report, {"key_ref": rollover.current_ref})
    return report


def kms_key_compromised(
    kms: Kms,
    key_id: str,
    store: SealedStore,
    *,
    compromised_version: int,
    audit: AuditLog | None = None,
    actor: str = "incident-response",
) -> IncidentReport:
    """Rotate ``key_id`` past ``compromised_version`` (once), rewrap every secret in
    ``store``, then refuse versions up to ``compromised_version``. A rerun skips what is
    done. If any secret could not be rewrapped, the old versions stay usable (retiring them
    would make those secrets unreadable) and the report says which ones to fix."""
    report = IncidentReport("kms-key-compromised", f"{key_id} v{compromised_version}")
    info = kms.key_info(key_id)
    if info.latest_version is None:
        raise ConfigurationError(
            f"{kms.backend} does not expose key versions: create a new customer key, seal "
            "every secret again under it, and schedule the old key's deletion"
        )
    if not 1 <= compromised_version <= info.latest_version:
        raise ConfigurationError(
            f"compromised_version must be between 1 and {info.latest_version} for {key_id}"
        )
    if info.latest_version <= compromised_version:
        version = kms.rotate_key(key_id)
        report.steps.append(Step("rotate the customer key", "done", f"now version {version}"))
    else:
        report.steps.append(
            Step("rotate the customer key", "nothing to do", f"at version {info.latest_version}")
        )
    rewrapped = rewrap_store(kms, key_id, store)
    detail = "; ".join(rewrapped.lines())
    if rewrapped.complete:
        outcome: Outcome = "done" if rewrapped.rewrapped else "nothing to do"
        report.steps.append(Step("rewrap every stored secret", outcome, detail))
    else:
        report.steps.append(Step("rewrap every stored secret", "failed", detail))
    report.steps.append(_retire(kms, key_id, compromised_version, ready=rewrapped.complete))
    _audit(audit, actor, report, {"key_id": key_id, "version": str(compromised_version)})
    return report


def _retire(kms: Kms, key_id: str, compromised_version: int, *, ready: bool) -> Step:
    action = f"refuse versions 1 to {compromised_version}"
    current_min = kms.key_info(key_id).min_decryption_version or 1
    if current_min > compromised_version:
        return Step(action, "nothing to do", f"minimum decryption version is {current_min}")
    if not ready:
        return Step(action, "failed", "not done: some secrets still need the old versions")
    retire = getattr(kms, "set_min_decryption_version", None)
    if retire is None:
        return Step(action, "failed", f"{kms.backend} cannot retire versions")
    try:
        retire(key_id, compromised_version + 1)
    except KmsError as error:
        return Step(action, "failed", str(error))
    return Step(action, "done", f"minimum decryption version is now {compromised_version + 1}")
