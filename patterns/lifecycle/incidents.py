"""Incident response, one function per scenario. Each is idempotent (running it again finds
nothing left to do and says so), reports every step it took, and writes an audit record.

* :func:`user_key_leaked`: revoke the user's temporary tokens, delete their stored key, end
  their sessions, revoke tokens again. The stores are small protocols (:class:`UserTokens`,
  :class:`UserKeys`, :class:`UserSessions`): :class:`~patterns.tokens.TokenService` already
  is a ``UserTokens``; :class:`AsyncKeyStoreKeys` and :class:`AsyncSessionStoreSessions`
  (:mod:`patterns.lifecycle.bff_stores`) adapt the BFF's key and session stores (memory or
  Redis), and :func:`bff_user_stores` makes both from a running BFF's stores
  (``bff_user_stores(bff_of(app).stores)``). :data:`NOT_DEPLOYED` says a store does not
  exist in this deployment (no token proxy, say), which is not the same as not handing it
  over. A run that finds nothing anywhere is "contained" only if a store that can say so
  knows the user (see :func:`user_key_leaked`); a token store that can say (a running
  proxy's answer, :class:`~patterns.lifecycle.remote.RemoteUserTokens`) and never knew the
  user fails its own step as "not verified".
* :func:`org_key_leaked`: roll the token proxy's organisation key over with no grace and
  revoke every token minted under the old key; contained only once the leaked key (named by
  its fingerprint) is no longer current and its ref is revoked.
* :func:`kms_key_compromised`: rotate the customer key past the compromised version,
  rewrap every stored secret, then retire the compromised versions, in that order: a
  version is never retired while a secret still needs it.

The user must still revoke a leaked Anthropic key in the Console: no code can do that for
them, and every report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Protocol, TypeVar, runtime_checkable

from patterns.errors import ConfigurationError, KmsError, PatternError
from patterns.kms import AuditLog, Kms
from patterns.lifecycle.bff_stores import (
    AsyncKeyStoreKeys,
    AsyncSessionStoreSessions,
    bff_user_stores,
    run_coroutine,
)
from patterns.lifecycle.incident_report import CONSOLE as _CONSOLE
from patterns.lifecycle.incident_report import IncidentReport, Outcome, Step
from patterns.lifecycle.incident_report import audit_report as _audit
from patterns.lifecycle.org_incident import leak_steps, normalise_fingerprint, org_key_leaked
from patterns.lifecycle.rotation import rewrap_store
from patterns.lifecycle.sealed import SealedStore

__all__ = [
    "NOT_DEPLOYED",
    "AsyncKeyStoreKeys",
    "AsyncSessionStoreSessions",
    "IncidentReport",
    "KnowsUsers",
    "Outcome",
    "Step",
    "UserKeys",
    "UserSessions",
    "UserTokens",
    "bff_user_stores",
    "kms_key_compromised",
    "leak_steps",
    "normalise_fingerprint",
    "org_key_leaked",
    "run_coroutine",
    "user_key_leaked",
]


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


@runtime_checkable
class KnowsUsers(Protocol):
    """A store that can say whether it ever saw a user (None: it cannot say). The BFF's
    stores can; a run that found nothing anywhere asks them (see :func:`user_key_leaked`)."""

    def user_known(self, user_id: str) -> bool | None: ...


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


def _attempt(store: object, act: Callable[[], int | bool]) -> int | bool | PatternError | None:
    """What a step's call returned, the error that failed it, or None without a store."""
    if store is None:
        return None
    try:  # one store down fails its step; the others still run (rerun to finish)
        return act()
    except PatternError as error:
        return error


def _step(action: str, noun: str, store: object, result: object) -> Step:
    if isinstance(result, PatternError):
        return Step(action, "failed", str(result))
    assert result is None or isinstance(result, int)  # bool is an int
    return _count_step(action, result, noun, store)


def _tokens_step(action: str, user_id: str, tokens: object, revoked: object) -> Step:
    """The token step; "not verified" instead of "nothing to do" when the token store can
    say whether it ever knew ``user_id`` and did not (a mistyped id, or the wrong proxy)."""
    step = _step(action, "token", tokens, revoked)
    if step.outcome != "nothing to do" or tokens is NOT_DEPLOYED:
        return step
    if not isinstance(tokens, KnowsUsers):
        return step
    try:
        known = tokens.user_known(user_id)
    except PatternError as error:
        return Step(action, "failed", f"not verified: {error}")
    if known is False:
        return Step(
            action,
            "failed",
            "not verified: revoked nothing, and the token proxy has no record of user "
            f"{user_id!r} (no token issued to them within its retention, 30 days by "
            "default); check the user id, and that this is the proxy that issues this "
            "deployment's tokens (another proxy with the same issuer secret answers too)",
        )
    return step


def _confirm_user(user_id: str, stores: Iterable[object]) -> Step | None:
    """None if a store that can say knows ``user_id`` (or none can say); else a failed step:
    a run that found nothing anywhere may have looked in the wrong place or for the wrong
    user, and must not read "contained"."""
    answers: list[bool] = []
    for store in stores:
        if store is None or store is NOT_DEPLOYED or not isinstance(store, KnowsUsers):
            continue
        try:
            known = store.user_known(user_id)
        except PatternError as error:
            return Step("confirm the user is known", "failed", str(error))
        if known:
            return None
        if known is not None:
            answers.append(known)
    if not answers:
        return None
    return Step(
        "confirm the user is known",
        "failed",
        f"not verified: found nothing, and no store has any record of user {user_id!r}; "
        "check the user id and that the response looks where the BFF keeps its data",
    )


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

    Order: revoke the tokens (what is spent fastest), delete the key, end the sessions,
    then revoke tokens once more, counted in the first step: a session still alive until
    the third step could have minted a token after the first. Sessions are ended after the
    key is deleted, so a sign-in racing the response gets a session with no key to spend
    (a new session, though: if the password leaked too, change it as well).

    A token store that can say whether it ever knew the user (:class:`KnowsUsers`:
    :class:`~patterns.lifecycle.remote.RemoteUserTokens` reads the proxy's ``known``) and
    revoked nothing fails its step as "not verified" when it did not know them, or could not
    say (a proxy from before ``known``): a mistyped user id or the wrong proxy is not
    "nothing left". When every store found nothing, the stores that can say whether they
    ever saw the user (:class:`KnowsUsers`: the BFF's stores) are asked; if none did, the
    report adds a failed "not verified" step instead of claiming "contained" for a mistyped
    user id. A store that can check it holds the BFF's data (the Redis stores' marker) fails
    its step when pointed at the wrong database or namespace."""
    report = IncidentReport("user-key-leaked", f"user {user_id}")
    revoke = "revoke temporary tokens"
    revoked = _attempt(tokens, lambda: _need(tokens).revoke_user(user_id))
    deleted = _attempt(keys, lambda: _need(keys).delete_user_key(user_id))
    ended = _attempt(sessions, lambda: _need(sessions).end_user_sessions(user_id))
    if tokens is not None and tokens is not NOT_DEPLOYED and not isinstance(revoked, PatternError):
        late = _attempt(tokens, lambda: _need(tokens).revoke_user(user_id))
        if isinstance(late, PatternError):
            revoked = PatternError(f"after ending the sessions, revoking again failed: {late}")
        else:
            revoked = int(revoked or 0) + int(late or 0)
    report.steps.append(_tokens_step(revoke, user_id, tokens, revoked))
    report.steps.append(_step("delete the stored key", "key", keys, deleted))
    report.steps.append(_step("end sessions", "session", sessions, ended))
    if all(step.outcome == "nothing to do" for step in report.steps):
        unconfirmed = _confirm_user(user_id, (keys, sessions, tokens))
        if unconfirmed is not None:
            report.steps.append(unconfirmed)
    report.manual.append(f"ask the user to {_CONSOLE}, then to enter a new key")
    _audit(audit, actor, report, {"user": user_id})
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
