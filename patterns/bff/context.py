"""What every route needs: the app's parts in one object, and the session check."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.requests import Request

from patterns.bff.monitoring import AnomalyDetector, AuditTrail
from patterns.bff.passwords import UserDirectory
from patterns.bff.proxy import Upstream
from patterns.bff.security import check_csrf, check_origin
from patterns.bff.settings import COOKIE_NAME, BffSettings
from patterns.bff.stores import Session, Stores
from patterns.bff.vault import KeyVault
from patterns.upstream.envelope import UpstreamError

__all__ = ["Bff", "SignedIn", "bff_of"]


@dataclass(slots=True)
class Bff:
    """The parts of one BFF app (``bff_of(app)`` returns it, for tests and notebooks)."""

    settings: BffSettings
    users: UserDirectory
    stores: Stores
    vault: KeyVault
    audit: AuditTrail
    anomalies: AnomalyDetector
    upstream: Upstream | None = field(default=None)  # made by the app's lifespan
    login_slots: threading.BoundedSemaphore | None = field(default=None)

    def __post_init__(self) -> None:
        if self.login_slots is None:
            self.login_slots = threading.BoundedSemaphore(self.settings.max_concurrent_logins)

    def request_id(self) -> str:
        return self.settings.ids("req")


@dataclass(frozen=True, slots=True)
class SignedIn:
    session_id: str
    session: Session

    @property
    def username(self) -> str:
        return self.session.username


def bff_of(app: object) -> Bff:
    """The :class:`Bff` behind an app made by :func:`patterns.bff.create_app`."""
    bff: Bff = app.state.bff  # type: ignore[attr-defined]
    return bff


async def signed_in(request: Request, *, changes_state: bool) -> SignedIn:
    """The caller's live session; for state changes also the Origin and CSRF checks."""
    bff = bff_of(request.app)
    defences = bff.settings.defences
    if changes_state:
        check_origin(request, bff.settings.allowed_origins, defences)
    session_id = request.cookies.get(COOKIE_NAME, "")
    session = None
    if 20 <= len(session_id) <= 128:
        session = await bff.stores.sessions.get(session_id, bff.settings.clock())
    if session is None:
        raise UpstreamError(401, "sign in first (POST /auth/login); the session is missing or over")
    if changes_state:
        check_csrf(request, session.csrf_token, defences)
    return SignedIn(session_id, session)
