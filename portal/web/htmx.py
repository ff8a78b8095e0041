"""Small typed helpers for htmx requests and responses, instead of header strings in views.

In the manner of django-htmx: ask a request whether htmx sent it and which element it will
swap, answer with a client-side redirect (200 + HX-Redirect, since htmx ignores headers on
3xx); and `VaryOnHtmx`, the middleware that marks every page and fragment as differing
for htmx.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def target_id(request: Request) -> str | None:
    """The id of the element htmx will swap the answer into, if it said."""
    return request.headers.get("hx-target")


def redirect(request: Request, url: str, *, status_code: int = 303) -> Response:
    """Send the whole page to `url`: HX-Redirect for htmx, a plain 303 otherwise."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return Response(status_code=status_code, headers={"Location": url})


class VaryOnHtmx:
    """Adds `Vary: HX-Request` to every HTML response, once.

    The same URL answers a whole page to a browser and a fragment to htmx (pages, the
    widget, the dashboard's table, and every error and outage answer, on any path), so a
    cache (the browser's back button, a proxy) must keep the two apart. The rule is "every
    HTML response" rather than a list of routes that read the header: an error page can come
    from any path, and a handler that starts reading HX-Request needs no second edit. JSON,
    static files and the body-less redirects are left alone: none of them is a page or a
    fragment, and redirects carry no freshness a cache could reuse.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    _add_vary(headers, "HX-Request")
            await send(message)

        await self.app(scope, receive, send_with_vary)


def _add_vary(headers: MutableHeaders, name: str) -> None:
    """`name` joins whatever Vary the handler (or GZip: Accept-Encoding) already set, unless
    it, or `*`, is there already."""
    lines = headers.getlist("vary")
    present = {v.strip().lower() for line in lines for v in line.split(",")}
    if name.lower() in present or "*" in present:
        return
    headers["Vary"] = ", ".join([*lines, name])  # one line, replacing any several
