"""Applying the rate limits in handlers: one call, and a 429 the caller can act on.

JSON callers get `{"code": "RATE_LIMITED", "retry_after"}`; browsers a friendly page; both
carry Retry-After and the RateLimit headers. Keys are a client address, a salon id or a
hash of a user name: never a secret or personal data.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.web.deps import web_deps
from portal.web.rate_limits import Decision, client_key
from portal.web.rendering import error_response


async def over_limit(request: Request, scope: str, key: str | None = None, *, as_json: bool = False) -> Response | None:
    """None when within the limit; else the 429 (JSON for API routes, else by Accept)."""
    decision = await web_deps(request).rate_limits.hit(scope, key if key is not None else client_key(request))
    if decision.allowed:
        return None
    return refusal(request, scope, decision, as_json=as_json)


async def over_failure_limit(request: Request, scope: str, key: str | None = None, *,
                             as_json: bool = False) -> Response | None:
    """Like `over_limit` for limits that count failures only: checks without counting; the
    caller counts a failure with `count_failure`."""
    decision = await web_deps(request).rate_limits.peek(scope, key if key is not None else client_key(request))
    return None if decision.allowed else refusal(request, scope, decision, as_json=as_json)


async def count_failure(request: Request, scope: str, key: str | None = None) -> None:
    await web_deps(request).rate_limits.hit(scope, key if key is not None else client_key(request))


def refusal(request: Request, scope: str, decision: Decision, *, as_json: bool = False) -> Response:
    """The 429 for a refused decision."""
    web_deps(request).metrics.rate_limit_rejection(scope)
    headers = decision.headers()
    if as_json:
        return JSONResponse({"success": False, "code": "RATE_LIMITED", "error": "Too many requests",
                             "retry_after": decision.reset_after}, status_code=429, headers=headers)
    return error_response(request, 429, "RATE_LIMITED", "error.rate_limited", next_step_key=None,
                          headers=headers, extra={"retry_after": decision.reset_after})
