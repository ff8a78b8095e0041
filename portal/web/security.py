"""Browser-facing protections: cross-site request refusal and security headers.

Cross-site protection reads `Sec-Fetch-Site` and `Origin` on unsafe methods, as Datasette
does: no token plumbing, and plain no-JS forms from our own pages keep working. Requests
that carry their own credential header (Bearer, X-API-Key) and the webhook and sandbox
partner endpoints authenticate otherwise and are exempt: a cross-site form cannot set
those headers.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PREFIXES = ("/webhook/", "/sandbox/api/")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def is_cross_site(method: str, path: str, headers: Headers, own_origins: frozenset[str]) -> bool:
    if method in SAFE_METHODS or path.startswith(EXEMPT_PREFIXES):
        return False
    if headers.get("authorization", "").lower().startswith("bearer ") or "x-api-key" in headers:
        return False
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        # "none" is a user-initiated navigation (typed URL, bookmark).
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        return origin.rstrip("/") not in own_origins
    return origin == "null"


class BrowserProtection:
    """ASGI middleware: refuse cross-site unsafe requests; add security headers."""

    def __init__(self, app: ASGIApp, *, base_origin: str, refuse: ASGIApp) -> None:
        self.app = app
        self.base_origin = base_origin
        self.refuse = refuse  # an ASGI app rendering the friendly 403

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        own = frozenset({self.base_origin, f"http://{host}", f"https://{host}"})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        if is_cross_site(scope["method"], scope["path"], headers, own):
            await self.refuse(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
