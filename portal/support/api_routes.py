"""The JSON admin API under /marketplace/admin: X-API-Key only.

No credential → 401; an owner's credential (Bearer onboarding token, the owner's session)
→ 403: it is the wrong kind, whatever it contains. Unknown salon → 404; malformed id or
body → 400/422 with the reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding.landing import MAX_YCLIENTS_SALON_ID
from portal.onboarding.owner import SESSION_KEY
from portal.salons.ids import YclientsSalonId
from portal.support import audit_store as audit
from portal.support import service as support_actions
from portal.support import staff
from portal.support import store as support
from portal.support.deps import support_deps
from portal.support.filters import BadFilter, parse_filter
from portal.web.request_input import BadInput, parse_id, parse_json
from portal.web.throttle import count_failure, over_failure_limit, over_limit
from portal.whatsapp.shared_breaker import SharedBreaker

ACTOR = "api-key"
MAX_AUDIT_PAGE = 1_000_000  # keeps the offset far inside PostgreSQL's bigint


class AdminJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=_default, separators=(",", ":")).encode()


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _error(status: int, code: str, message: str) -> AdminJSON:
    return AdminJSON({"success": False, "code": code, "error": message}, status_code=status,
                     headers={"Cache-Control": "no-store"})


async def refuse(request: Request) -> Response | None:
    """None when the request carries the admin API key (and is within the rate limit);
    else the right refusal."""
    if "x-api-key" in request.headers:
        # Wrong keys count against the client's API-key failures (as many as LOGIN_RATE_LIMIT
        # allows wrong passwords, in a count of their own: they never lock the sign-in page);
        # past it even the right key waits, so a guess that lands cannot be told from one
        # that did not.
        if (limited := await over_failure_limit(request, "api_key_client", as_json=True)) is not None:
            return limited
        if staff.api_key_matches(request):
            return await over_limit(request, "admin", as_json=True)
        await count_failure(request, "api_key_client")
        return _error(401, "INVALID_API_KEY", "The X-API-Key is not valid.")
    if request.headers.get("authorization") or request.session.get(SESSION_KEY):
        return _error(403, "WRONG_CREDENTIAL", "Owner credentials cannot be used for the admin API.")
    return _error(401, "UNAUTHORIZED", "Send the admin API key in X-API-Key.")


# "Needs attention" as the API has always said it: English phrases, part of its contract
# (the dashboard's words come from the catalogues and may change; these do not).
ATTENTION_PHRASES = {"activation_failed": "activation failed", "logged_out": "WhatsApp logged out",
                     "qr_expired": "QR code expired", "session_failed": "WhatsApp session failed",
                     "stuck_activating": "stuck activating"}


def attention_phrase(code: str | None, link_status: str | None) -> str | None:
    if code is None:
        return None
    return f"stuck in {link_status}" if code == "stuck" else ATTENTION_PHRASES[code]


def _in_phrases(salon: dict[str, Any]) -> dict[str, Any]:
    return salon | {"attention": attention_phrase(salon["attention"], salon["whatsapp_status"])}


def yclients_salon_id_of(request: Request) -> YclientsSalonId | None:
    """YClients' salon id from the URL (the routes call it `salon_id`: the id the marketplace
    and staff know), or None when it is not one."""
    number = parse_id(request.path_params["salon_id"], maximum=MAX_YCLIENTS_SALON_ID)
    return YclientsSalonId(number) if number is not None else None


async def salons(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    try:
        f = parse_filter(request.query_params)
    except BadFilter as exc:
        return _error(400, "BAD_FILTER", str(exc))
    rows, total = await support.salons_page(support_deps(request).pool, f)
    return AdminJSON({"salons": [_in_phrases(r) for r in rows], "page": f.page, "page_size": support.PAGE_SIZE,
                      "total": total})


async def salon_status(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    yclients_salon_id = yclients_salon_id_of(request)
    if yclients_salon_id is None:
        return _error(400, "BAD_SALON_ID", "The salon id must be a positive number.")
    detail = await support.salon_detail(support_deps(request).pool, yclients_salon_id)
    if detail is None:
        return _error(404, "SALON_NOT_FOUND", "No salon with this YClients id.")
    detail.pop("api_key_prefix", None)  # whether a key is set, never the key (nor part of it)
    detail["events"] = detail["events"][:20]
    return AdminJSON(_in_phrases(detail))


async def disconnect(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    yclients_salon_id = yclients_salon_id_of(request)
    if yclients_salon_id is None:
        return _error(400, "BAD_SALON_ID", "The salon id must be a positive number.")
    try:
        # The reason is the only text used, and clean_reason says what is wrong with it (422).
        body = parse_json(await request.body() or b"{}", storable_strings=False)
    except BadInput as exc:
        return _error(400, "BAD_JSON", f"The body must be JSON: {exc}.")
    reason = support_actions.clean_reason(body.get("reason") if isinstance(body, dict) else None)
    if reason is None:
        return _error(422, "REASON_REQUIRED",
                      "Give a reason (1-500 characters of text, no control characters) in {\"reason\": ...}.")
    result = await support_actions.disconnect(support_deps(request), ACTOR, yclients_salon_id, reason)
    if result is None:
        return _error(404, "SALON_NOT_FOUND", "No salon with this YClients id.")
    return AdminJSON({"success": result.ok, "message": result.message}, status_code=200 if result.ok else 502)


async def breaker_stats(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    return AdminJSON(await _breaker_stats(support_deps(request).breaker))


async def _breaker_stats(breaker: SharedBreaker) -> dict[str, Any]:
    """The shared breaker as this instance sees it, and how many running instances see it too."""
    seen, running = await breaker.seen(breaker.version)
    return breaker.stats() | {"seen_by": seen, "instances_running": running}


async def breaker_reset(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    result = await support_actions.steer_breaker(support_deps(request), ACTOR, "reset")
    return AdminJSON({"success": result.ok, "message": result.message,
                      "stats": await _breaker_stats(support_deps(request).breaker)})


async def audit_log(request: Request) -> Response:
    if (refusal := await refuse(request)) is not None:
        return refusal
    page = parse_id(request.query_params.get("page", "1"), maximum=MAX_AUDIT_PAGE)
    if page is None:
        return _error(400, "BAD_PAGE", f"page must be a number from 1 to {MAX_AUDIT_PAGE}")
    entries = await audit.recent(support_deps(request).pool, limit=100, offset=(page - 1) * 100)
    return AdminJSON({"entries": entries, "page": page})


def routes() -> list[BaseRoute]:
    """The JSON admin API, behind X-API-Key."""
    return [
        Route("/marketplace/admin/salons", salons),
        Route("/marketplace/admin/salon/{salon_id}/status", salon_status),
        Route("/marketplace/admin/salon/{salon_id}/disconnect", disconnect, methods=["POST"]),
        Route("/marketplace/admin/circuit-breaker/stats", breaker_stats),
        Route("/marketplace/admin/circuit-breaker/reset", breaker_reset, methods=["POST"]),
        Route("/marketplace/admin/audit-log", audit_log),
    ]
