"""The organisation key leaked: roll the token proxy's keyring over with no grace, revoke
every older version, and say "contained" only once the leaked key (named by fingerprint) is
no longer current and its version is revoked. :func:`leak_steps` is shared with the remote
form (:func:`patterns.lifecycle.remote.org_key_leaked_remote`). Re-exported by
:mod:`patterns.lifecycle.incidents`."""

from __future__ import annotations

from collections.abc import Iterable

from patterns.errors import ConfigurationError, PatternError
from patterns.keys import ApiKey
from patterns.kms import AuditLog
from patterns.lifecycle.incident_report import CONSOLE, IncidentReport, Outcome, Step
from patterns.lifecycle.incident_report import audit_report as _audit
from patterns.tokens.keyring import Keyring

__all__ = ["leak_steps", "normalise_fingerprint", "org_key_leaked"]


def normalise_fingerprint(value: str) -> str:
    """``sha256:1a2b3c4d`` from what an operator types (``1A2B3C4D``, ``SHA256:1a2b3c4d``).
    Anything else raises :class:`ConfigurationError` without echoing the value: someone
    may paste the key itself."""
    digits = value.strip().lower().removeprefix("sha256:")
    if len(digits) != 8 or any(c not in "0123456789abcdef" for c in digits):
        raise ConfigurationError(
            "the leaked key's fingerprint must look like sha256:1a2b3c4d (8 hex digits, as "
            "reports and logs show it); never pass the key itself"
        )
    return f"sha256:{digits}"


def leak_steps(
    leaked: str,
    *,
    rolled_over: bool,
    current_ref: str,
    current_fingerprint: str,
    revoked: Iterable[str],
    versions: Iterable[tuple[str, str, str]],
) -> list[Step]:
    """The steps of an organisation-key leak response, from a rollover's outcome
    (``versions``: ref, fingerprint, state after it). Contained only if the current key is
    not the leaked one (``leaked``, normalised) and the leaked key's ref is revoked here: a
    rollover that changed nothing is not a containment by itself."""
    revoked = list(revoked)
    action = "roll over the organisation key"
    if current_fingerprint == leaked:
        steps = [
            Step(
                action,
                "failed",
                f"still uses the leaked key ({leaked}): write a new key (created in the "
                "Console) where the proxy reads it (its key file), then run this again",
            )
        ]
    else:
        outcome: Outcome = "done" if rolled_over else "nothing to do"
        steps = [Step(action, outcome, f"now {current_ref} ({current_fingerprint})")]
    steps.append(
        Step(
            "revoke tokens of older key versions",
            "done" if revoked else "nothing to do",
            ", ".join(revoked) or "none left",
        )
    )
    if current_fingerprint == leaked:
        return steps
    states = {state for _, fingerprint, state in versions if fingerprint == leaked}
    if states != {"revoked"}:
        found = f"its state here is {', '.join(sorted(states))}" if states else "no version"
        steps.append(
            Step(
                "confirm the leaked key is revoked",
                "failed",
                f"not verified: {found} of {leaked} here; check the fingerprint (the current "
                f"key is {current_fingerprint})",
            )
        )
    return steps


def org_key_leaked(
    keyring: Keyring,
    new_key: ApiKey,
    *,
    leaked: str,
    audit: AuditLog | None = None,
    actor: str = "incident-response",
) -> IncidentReport:
    """Roll the organisation key over to ``new_key`` at once and revoke every token minted
    under an older version (they get 401 on their next request). ``leaked`` is the leaked
    key's fingerprint (``sha256:1a2b3c4d``): the response fails, rolling nothing over, if
    ``new_key`` is the leaked key, and is "contained" only once the leaked version is
    revoked in this keyring (see :func:`leak_steps`)."""
    leaked = normalise_fingerprint(leaked)
    report = IncidentReport("org-key-leaked", f"keyring {keyring.current_ref}")
    if ApiKey(new_key).fingerprint == leaked:
        report.steps.append(
            Step(
                "roll over the organisation key",
                "failed",
                f"the new key is the leaked key ({leaked}): create a new key in the Console",
            )
        )
    else:
        try:
            rollover = keyring.rollover(new_key, grace=0, revoke_previous=True)
        except PatternError as error:
            report.steps.append(Step("roll over the organisation key", "failed", str(error)))
        else:
            report.steps.extend(
                leak_steps(
                    leaked,
                    rolled_over=rollover.rolled_over,
                    current_ref=rollover.current_ref,
                    current_fingerprint=rollover.current_fingerprint,
                    revoked=rollover.revoked_refs,
                    versions=[(v.ref, v.fingerprint, v.state) for v in keyring.status()],
                )
            )
    report.subject = f"keyring now at {keyring.current_ref}"
    report.manual.append(CONSOLE)
    _audit(audit, actor, report, {"key_ref": keyring.current_ref, "leaked": leaked})
    return report
