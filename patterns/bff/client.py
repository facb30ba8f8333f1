"""A signed-in BFF session for scripts, tests and notebooks, and the official SDK on top.

The browser keeps the session cookie for you; a Python client must do it by hand. httpx's
cookie jar follows RFC 6265 strictly and sends a ``Secure`` cookie only over https, so on a
loopback ``http://`` BFF it would silently drop ``__Host-session`` (Chromium treats
``http://127.0.0.1`` as potentially trustworthy and sends it). This class therefore reads
the cookie from ``Set-Cookie`` itself and sends it explicitly in a ``Cookie`` header, with
the ``Origin`` a browser would add and the session's ``X-CSRF-Token``.

:meth:`BffClient.sdk` returns the official ``anthropic`` client with ``base_url`` set to the
BFF's ``/claude`` prefix. It carries no Anthropic key: the SDK insists on some credential,
so it gets a placeholder that the BFF ignores, and never reads ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final, Self

import anthropic
import httpx

from patterns.bff.settings import COOKIE_NAME
from patterns.keys import ApiKey

__all__ = ["PLACEHOLDER_CREDENTIAL", "BffClient", "cookie_from"]

#: What the SDK sends as its bearer credential to a BFF: not a key, and ignored there.
PLACEHOLDER_CREDENTIAL: Final = "bff-session-auth"


def cookie_from(response: httpx.Response, name: str = COOKIE_NAME) -> str | None:
    """The value ``Set-Cookie`` gives ``name`` in ``response`` ("" when it clears it)."""
    for header in response.headers.get_list("set-cookie"):
        first = header.split(";", 1)[0]
        key, _, value = first.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


class BffClient:
    """Talk to a BFF at ``base_url`` as one user. Raises ``httpx.HTTPStatusError`` on refusals
    from the helper methods; :meth:`request` returns any response unchanged."""

    def __init__(self, base_url: str, *, origin: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.origin = origin or self.base_url
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.session_id: str | None = None
        self.csrf_token: str | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        """Headers a browser on ``origin`` would send with this session."""
        headers = {"origin": self.origin}
        if self.session_id:
            headers["cookie"] = f"{COOKIE_NAME}={self.session_id}"
        if csrf and self.csrf_token:
            headers["x-csrf-token"] = self.csrf_token
        return headers

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {**self.headers(), **options.pop("headers", {})}
        return self._http.request(method, path, headers=headers, **options)

    def _checked(self, method: str, path: str, **options: Any) -> httpx.Response:
        response = self.request(method, path, **options)
        response.raise_for_status()
        return response

    # -- the API ----------------------------------------------------------------------------
    def login(self, username: str, password: str) -> Self:
        response = self._checked(
            "POST", "/auth/login", json={"username": username, "password": password}
        )
        self.session_id = cookie_from(response)
        self.csrf_token = response.json()["csrf_token"]
        return self

    def logout(self) -> None:
        self._checked("POST", "/auth/logout")
        self.session_id = self.csrf_token = None

    def me(self) -> dict[str, Any]:
        """The contract's fields (``username``, ``has_key``, ``key_fingerprint``); the extras
        the demo page needs (``csrf_token``, ``models``) are left out."""
        data: dict[str, Any] = self._checked("GET", "/auth/me").json()
        data.pop("csrf_token", None)
        data.pop("models", None)
        return data

    def store_key(self, key: ApiKey) -> None:
        self._checked("PUT", "/keys/anthropic", json={"api_key": key.reveal()})

    def key_fingerprint(self) -> str:
        fingerprint: str = self._checked("GET", "/keys/anthropic").json()["key_fingerprint"]
        return fingerprint

    def delete_key(self) -> None:
        self._checked("DELETE", "/keys/anthropic")

    def usage(self) -> dict[str, Any]:
        data: dict[str, Any] = self._checked("GET", "/usage").json()
        return data

    def sdk(self, **options: Any) -> anthropic.Anthropic:
        """The official SDK, pointed at nothing but this BFF, signed in as this session."""
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(
            base_url=f"{self.base_url}/claude",
            api_key=PLACEHOLDER_CREDENTIAL,
            default_headers=self.headers(),
            **options,
        )

    def async_sdk(self, **options: Any) -> anthropic.AsyncAnthropic:
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(
            base_url=f"{self.base_url}/claude",
            api_key=PLACEHOLDER_CREDENTIAL,
            default_headers=self.headers(),
            **options,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "signed in" if self.session_id else "signed out"
        return f"<BffClient {self.base_url} {state}>"
