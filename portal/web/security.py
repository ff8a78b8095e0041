"""Browser-facing protections: cross-site request refusal and security headers.

Cross-site protection reads `Sec-Fetch-Site` and `Origin` on unsafe methods, as Datasette
does: no token plumbing, and plain no-JS forms from our own pages keep working. The webhook
and sandbox partner endpoints authenticate otherwise and are exempt. A request with its own
credential header (Bearer, X-API-Key) is exempt only when it sends none of our credential
cookies: then the header is all that can authenticate it, and a cross-site form cannot set
headers. With a cookie it is checked like any other: a junk header must not carry the
owner's cookie past the check.

HSTS is sent when the portal's base URL is https (the portal then lives behind TLS only).

Inside YClients' app card (EMBED_IN_YCLIENTS) our page is a cross-origin iframe: its own
requests to us are still `Sec-Fetch-Site: same-origin` (the initiator is our document, not
the framing page), so the check above lets them through unchanged, while a form or fetch
from the framing page (or any other site) is `cross-site` and refused, though the owner's
`SameSite=None` cookie would ride along with it.
"""

from __future__ import annotations

from collections.abc import Collection
from http.cookies import CookieError, SimpleCookie

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.platform.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PREFIXES = ("/webhook/", "/sandbox/api/")

def frame_ancestors(settings: Settings) -> str:
    """CSP `frame-ancestors`: YClients' hosts only when the app is listed with is_iframe."""
    if settings.embed_in_yclients and settings.yclients_frame_hosts:
        return " ".join(settings.yclients_frame_hosts)
    return "'self'"


def content_security_policy(frame_ancestors: str = "'self'") -> str:
    """Our pages load only our own files; `frame_ancestors` says who may show them in a frame
    (YClients' hosts when the app lives in its app card, else only ourselves)."""
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; frame-ancestors {frame_ancestors}; base-uri 'self'; object-src 'none'")


CONTENT_SECURITY_POLICY = content_security_policy()
OTHER_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
SECURITY_HEADERS = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()), *OTHER_HEADERS]
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
                 credential_cookies: Collection[str] = (), frame_ancestors: str = "'self'") -> None:
        self.app = app
        self.base_origin = base_origin
        self.refuse = refuse  # an ASGI app rendering the friendly 403
        self.credential_cookies = tuple(credential_cookies)  # the session cookies that authenticate
        csp = (b"content-security-policy", content_security_policy(frame_ancestors).encode())
        self.headers = [csp, *OTHER_HEADERS] + ([HSTS] if base_origin.startswith("https://") else [])

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
