"""Small typed helpers for htmx requests and responses, instead of header strings in views.

In the manner of django-htmx: ask a request whether htmx sent it and which element it will
swap, answer with a client-side redirect (200 + HX-Redirect, since htmx ignores headers on
3xx), and mark a response that differs for htmx.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response


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


def vary_on_htmx(response: Response) -> Response:
    """The same URL serves a page and a fragment: caches must keep them apart."""
    existing = response.headers.get("vary")
    response.headers["Vary"] = f"{existing}, HX-Request" if existing else "HX-Request"
    return response
