"""The direct browser call (the source guide's "Haiku app"): what it sends, and who can see it.

A page calls the Messages API itself with the user's key. The API allows that only when the
request carries ``anthropic-dangerous-direct-browser-access: true``; without it a browser
request (one with an ``Origin``) gets 401 and no CORS header, so the page cannot read the
answer. This module builds that exact request, sends it the way a browser does (preflight,
then the call, then the CORS check on the answer), lists who else sees the key, simulates an
injected script reading it, and holds the logic of notebook 01's warning panel and usage
meter. The browser side lives in ``patterns/web/direct-call.html``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import httpx

from patterns.keys import ApiKey
from patterns.models import default_model
from patterns.scanning import find_secrets
from patterns.upstream.middleware import CORS_REJECTION, DANGEROUS_HEADER

__all__ = [
    "API_VERSION",
    "BROWSER_ORIGIN",
    "CORS_REJECTION",
    "DANGEROUS_HEADER",
    "EXPOSURES",
    "BrowserOutcome",
    "BrowserPage",
    "BrowserRequest",
    "Exposure",
    "UsageMeter",
    "UsageReading",
    "WarningConfig",
    "browser_request",
    "check_browser_headers",
    "create_page_app",
    "injected_script",
    "send_as_browser",
    "warning_content",
]

#: The version browsers should pin (documented, stable); the SDK may send a newer one.
API_VERSION: Final = "2023-06-01"
#: The origin the simulated page is served from.
BROWSER_ORIGIN: Final = "http://localhost:8000"
WEB_DIR: Final = Path(__file__).resolve().parent / "web"


# -- the request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrowserRequest:
    """A request exactly as the page's ``fetch`` sends it (``Origin`` added by the browser).

    ``headers`` hold the key's safe display; only :meth:`wire_headers` holds the key.
    """

    url: str
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any]
    key: ApiKey = field(repr=False)

    def render(self) -> str:
        """The request as devtools' Network tab shows it, with the key as a fingerprint."""
        lines = [f"POST {self.url}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append("")
        lines.append(json.dumps(self.body, indent=2))
        return "\n".join(lines)

    def wire_headers(self) -> dict[str, str]:
        """The headers to put on the wire (the one place this module reveals the key)."""
        display = str(self.key)
        return {n: (self.key.reveal() if v == display else v) for n, v in self.headers}


def browser_request(
    key: ApiKey,
    prompt: str,
    *,
    base_url: str,
    model: str | None = None,
    max_tokens: int = 256,
    dangerous_header: bool = True,
    origin: str = BROWSER_ORIGIN,
) -> BrowserRequest:
    """Build the page's call: the guide's headers, a current model, and the ``Origin``."""
    headers = [
        ("content-type", "application/json"),
        ("x-api-key", str(key)),  # a display value; wire_headers() puts the key in
        ("anthropic-version", API_VERSION),
    ]
    if dangerous_header:
        headers.append((DANGEROUS_HEADER, "true"))
    headers.append(("origin", origin))
    body = {
        "model": model or default_model(),
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    return BrowserRequest(f"{base_url.rstrip('/')}/v1/messages", tuple(headers), body, key)


def check_browser_headers(headers: Mapping[str, str]) -> list[str]:
    """What is wrong with a page's headers for a direct call (empty list: nothing)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    problems = []
    if not lowered.get("x-api-key", "").startswith("sk-ant-"):
        problems.append("x-api-key must carry the user's key (sk-ant-...)")
    if lowered.get("anthropic-version") != API_VERSION:
        problems.append(f"anthropic-version must be {API_VERSION}")
    if lowered.get(DANGEROUS_HEADER) != "true":
        problems.append(f"{DANGEROUS_HEADER} must be 'true', or the API refuses the browser")
    if lowered.get("content-type") != "application/json":
        problems.append("content-type must be application/json")
    if "authorization" in lowered:
        problems.append("send the key once, in x-api-key, not also in Authorization")
    return problems


# -- sending it like a browser ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrowserOutcome:
    """What happened, and what the page's script can read."""

    preflight_status: int
    status: int
    readable: bool
    error_type: str | None
    error_message: str | None
    reply: str | None
    request_id: str | None
    headers: dict[str, str]

    def summary(self) -> str:
        if self.readable and self.reply is not None:
            return f"{self.status}: page reads the reply: {self.reply!r}"
        if self.readable:
            return f"{self.status} {self.error_type}: {self.error_message!r}; the page can read it"
        seen = "the page sees only a network error (fetch rejects)"
        return f"{self.status} {self.error_type}: {self.error_message!r}; {seen}"


def send_as_browser(
    request: BrowserRequest, *, client: httpx.Client | None = None
) -> BrowserOutcome:
    """Preflight, call, then apply the browser's CORS check to the answer."""
    own = client is None
    http = client or httpx.Client(timeout=10)
    try:
        names = ",".join(n for n, _ in request.headers if n not in {"origin", "content-type"})
        preflight = http.options(
            request.url,
            headers={
                "origin": dict(request.headers)["origin"],
                "access-control-request-method": "POST",
                "access-control-request-headers": f"{names},content-type",
            },
        )
        response = http.post(request.url, headers=request.wire_headers(), json=request.body)
    finally:
        if own:
            http.close()
    allowed = response.headers.get("access-control-allow-origin")
    readable = allowed in {"*", dict(request.headers)["origin"]}
    data = response.json()
    error = data.get("error") if data.get("type") == "error" else None
    reply = None if error else "".join(b.get("text", "") for b in data.get("content", []))
    return BrowserOutcome(
        preflight_status=preflight.status_code,
        status=response.status_code,
        readable=readable,
        error_type=error["type"] if error else None,
        error_message=error["message"] if error else None,
        reply=reply,
        request_id=response.headers.get("request-id"),
        headers=dict(response.headers),
    )


# -- who sees the key -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exposure:
    who: str
    how: str
    mitigation: str


EXPOSURES: Final[tuple[Exposure, ...]] = (
    Exposure(
        "the user, in devtools",
        "Network tab shows x-api-key on every request",
        "acceptable: it is their own key; say so in the warning",
    ),
    Exposure(
        "any script on the page (XSS, a compromised CDN or npm package)",
        "reads the input field, a JS variable, storage, or wraps fetch()",
        "strict CSP, no third-party scripts, no key in storage; only a server hides it",
    ),
    Exposure(
        "browser extensions",
        "content scripts read the page; webRequest sees headers",
        "tell users to use a profile without extensions; cannot be enforced",
    ),
    Exposure(
        "people sharing the machine",
        "localStorage survives the tab; autofill; history",
        "keep the key in memory only; clear on logout; a dedicated, capped key",
    ),
    Exposure(
        "a TLS-inspecting proxy or network log",
        "decrypted traffic includes the header",
        "nothing the page can do; warn corporate users",
    ),
)


@dataclass
class BrowserPage:
    """A page's reachable state, as a same-origin script sees it."""

    local_storage: dict[str, str] = field(default_factory=dict)
    session_storage: dict[str, str] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    outgoing: list[BrowserRequest] = field(default_factory=list)


def injected_script(page: BrowserPage) -> list[tuple[str, ApiKey]]:
    """What a malicious script on the page collects: every key-shaped value in storage,
    globals and form fields, and the ``x-api-key`` of every request it sees by wrapping
    ``fetch``. Results are :class:`ApiKey` objects, so printing them shows fingerprints."""
    stolen: list[tuple[str, ApiKey]] = []
    places = {
        "localStorage": page.local_storage,
        "sessionStorage": page.session_storage,
        "window": page.globals,
        "input": page.inputs,
    }
    for place, values in places.items():
        for name, value in values.items():
            for match in find_secrets(value, include_fakes=True):
                stolen.append((f"{place}.{name}", ApiKey(match.value)))
    for request in page.outgoing:
        stolen.append((f"fetch() to {request.url}", request.key))
    return stolen


# -- the warning panel and the usage meter --------------------------------------------------

Storage = Literal["memory", "sessionStorage", "localStorage"]
Audience = Literal["personal", "internal", "public"]


@dataclass(frozen=True, slots=True)
class WarningConfig:
    app_name: str = "My app"
    storage: Storage = "memory"
    audience: Audience = "personal"
    dedicated_key: bool = True
    spend_limit_usd: float | None = 20.0


def warning_content(config: WarningConfig) -> tuple[str, list[str]]:
    """The warning an app using direct calls must show: a verdict and its points."""
    verdict = (
        f"{config.app_name} sends your API key from this browser straight to Anthropic. "
        "Anything running in this page can read it."
    )
    points = [
        "Use a key made only for this app, and revoke it in the Anthropic Console when done.",
        "Set a monthly spend limit on its workspace, and watch usage for surprises.",
        "Use a browser profile without extensions, and never on a shared or managed machine.",
    ]
    if config.storage != "memory":
        points.insert(
            0,
            f"This app keeps your key in {config.storage}: it stays on this "
            "machine after the tab closes. Clear it when you finish.",
        )
    if not config.dedicated_key:
        points.insert(0, "Do not paste your main key: a leak would expose every project.")
    if config.spend_limit_usd is None:
        points.append("No spend limit is set: a stolen key can spend without bound.")
    if config.audience == "public":
        verdict = (
            "Not acceptable for a public app: put the key behind a backend "
            "(see notebook 05, the backend-for-frontend). " + verdict
        )
    return verdict, points


@dataclass(frozen=True, slots=True)
class UsageReading:
    kind: str
    limit: int
    remaining: int
    reset: str

    @property
    def used_fraction(self) -> float:
        return 0.0 if self.limit == 0 else (self.limit - self.remaining) / self.limit


class UsageMeter:
    """Reads ``anthropic-ratelimit-*`` headers: the only usage signal a browser-only app has
    (and only if the API exposes those headers to scripts; the stand-in does not)."""

    KINDS: Final = ("requests", "input-tokens", "output-tokens")

    def __init__(self) -> None:
        self.readings: dict[str, UsageReading] = {}

    def update(self, headers: Mapping[str, str]) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        for kind in self.KINDS:
            prefix = f"anthropic-ratelimit-{kind}-"
            if prefix + "limit" in lowered:
                self.readings[kind] = UsageReading(
                    kind,
                    int(lowered[prefix + "limit"]),
                    int(lowered[prefix + "remaining"]),
                    lowered.get(prefix + "reset", ""),
                )

    def summary(self) -> str:
        if not self.readings:
            return "no usage headers seen yet"
        lines = []
        for reading in self.readings.values():
            when = reading.reset
            with contextlib.suppress(ValueError):
                when = datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%H:%M:%S")
            lines.append(
                f"{reading.kind:>13}: {reading.limit - reading.remaining:>6} of "
                f"{reading.limit:>6} used ({reading.used_fraction:.0%}), full again at {when}"
            )
        return "\n".join(lines)


# -- serving the demo page ------------------------------------------------------------------


def create_page_app() -> Any:
    """A tiny app serving ``direct-*`` files from ``patterns/web`` with a strict CSP.

    ``script-src 'self'`` blocks inline (injected) scripts; it cannot stop a script the page
    itself loads from turning bad, which is why the notebook still calls this pattern risky.
    """
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route

    csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src *; base-uri 'none'"

    async def page(request: Any) -> Response:
        name = str(request.path_params["name"])
        path = WEB_DIR / name
        if not name.startswith("direct-") or "/" in name or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        headers = {
            "content-security-policy": csp,
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
        }
        return FileResponse(path, headers=headers)

    return Starlette(routes=[Route("/{name}", page)])
