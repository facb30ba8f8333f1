"""Where the keyring's key comes from and how an operator triggers a rollover.

``key_file_source`` reads the organisation key from a file only its owner can read;
``add_rollover_route`` adds ``POST /admin/org-key/reload`` to the token proxy. Both are
re-exported by :mod:`patterns.tokens.keyring`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from patterns.errors import ConfigurationError, PatternError
from patterns.keys import ApiKey
from patterns.tokens.key_refs import utc

if TYPE_CHECKING:
    from fastapi import FastAPI

    from patterns.tokens.keyring import Keyring

__all__ = ["ReloadRequest", "add_rollover_route", "key_file_source"]


def key_file_source(path: str | os.PathLike[str]) -> Callable[[], ApiKey]:
    """A keyring ``source`` that reads the key from a file only its owner can read.

    A file is where secret managers and orchestrators put secrets (Kubernetes and Docker
    secrets, systemd credentials); unlike an environment variable it can change while the
    process runs, which is what a rollover without restart needs.
    """
    target = Path(path)

    def read() -> ApiKey:
        try:
            mode = target.stat().st_mode
            text = target.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the key file {target}: {error.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the key file {target} is readable by other users; chmod 600 it"
            )
        return ApiKey(text.strip())

    return read


class ReloadRequest(BaseModel):
    """Body of ``POST /admin/org-key/reload``: how to roll over, never the key itself."""

    model_config = ConfigDict(extra="forbid")
    grace_seconds: float = Field(default=900.0, ge=0, le=7 * 24 * 3600)
    revoke_previous: bool = False


def add_rollover_route(app: FastAPI, keyring: Keyring, dependencies: list[Any]) -> None:
    """``POST /admin/org-key/reload`` (behind the issuer secret): re-read the key from the
    keyring's source and roll over. The key never travels over HTTP; the body only says
    how: ``{"grace_seconds": 900, "revoke_previous": false}``."""
    from fastapi.responses import JSONResponse

    from patterns.upstream.envelope import UpstreamError

    @app.post("/admin/org-key/reload", dependencies=dependencies)
    async def reload(body: ReloadRequest) -> JSONResponse:
        try:
            report = keyring.reload(grace=body.grace_seconds, revoke_previous=body.revoke_previous)
        except PatternError as error:
            raise UpstreamError(400, str(error)) from None
        payload = {
            "changed": report.changed,
            "rolled_over": report.rolled_over,
            "current": {"ref": report.current_ref, "fingerprint": report.current_fingerprint},
            "revoked": list(report.revoked_refs),
            "versions": [
                {"ref": s.ref, "fingerprint": s.fingerprint, "state": s.state}
                for s in keyring.status()
            ],
            "delete_old_key_after": utc(report.delete_old_key_after)
            if report.delete_old_key_after is not None
            else None,
            "report": report.lines(),
        }
        return JSONResponse(payload, headers={"cache-control": "no-store"})
