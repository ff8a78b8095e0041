"""Browser-facing protections: cross-site request refusal and security headers.

Cross-site protection reads `Sec-Fetch-Site` and `Origin` on unsafe methods, as Datasette
does: no token plumbing, and plain no-JS forms from our own pages keep working. The webhook
and sandbox partner endpoints authenticate otherwise and are exempt. A request with its own
credential header (Bearer, X-API-Key) is exempt only when it sends none of our credential
cookies: then the header is all that can authenticate it, and a cross-site form cannot set
headers. With a cookie it is checked like any other: a junk header must not carry the
owner's cookie past the check.

HSTS is sent when the portal's base URL is https (the portal then lives behind TLS only).
"""

from __future__ import annotations

from collections.abc import Collection
from http.cookies import CookieError, SimpleCookie

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
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def sends_cookie(headers: Headers, names: Collection[str]) -> bool:
    """Does the request carry any of these cookies? An unparsable Cookie header counts as yes."""
    raw = headers.get("cookie")
    if not raw or not names:
        return False
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return True
    return any(name in jar for name in names) or any(f"{name}=" in raw for name in names)


def is_cross_site(method: str, path: str, headers: Headers, own_origins: frozenset[str],
                  credential_cookies: Collection[str] = ()) -> bool:
    if method in SAFE_METHODS or path.startswith(EXEMPT_PREFIXES):
        return False
    has_header = headers.get("authorization", "").lower().startswith("bearer ") or "x-api-key" in headers
    if has_header and not sends_cookie(headers, credential_cookies):
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

    def __init__(self, app: ASGIApp, *, base_origin: str, refuse: ASGIApp,
                 credential_cookies: Collection[str] = ()) -> None:
        self.app = app
        self.base_origin = base_origin
        self.refuse = refuse  # an ASGI app rendering the friendly 403
        self.credential_cookies = tuple(credential_cookies)  # the session cookies that authenticate
        self.headers = SECURITY_HEADERS + ([HSTS] if base_origin.startswith("https://") else [])

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
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        if is_cross_site(scope["method"], scope["path"], headers, own, self.credential_cookies):
            await self.refuse(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
