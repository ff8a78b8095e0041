"""POST /marketplace/activate: the owner switches the integration on.

Three kinds of caller, one service call: JSON `{"token": ...}` (the earlier integration's
contract) gets JSON with real status codes; htmx gets the Activation panel (or HX-Redirect
to YClients on success); a no-JS form gets a 303 to YClients or the page with the error.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.activation import branches
from portal.activation.deps import activation_deps
from portal.activation.outcomes import Outcome
from portal.onboarding import token as onboarding_token
from portal.onboarding.owner import current_owner, opens
from portal.onboarding.token import InvalidToken, OnboardingClaims
from portal.salons import store as salons
from portal.salons.ids import YclientsSalonId
from portal.salons.store import Salon
from portal.web.htmx import is_htmx, redirect
from portal.web.i18n import pick_language, translator
from portal.web.rendering import WholePage, render
from portal.web.request_input import parse_json
from portal.web.throttle import over_limit


async def _claims(request: Request) -> tuple[OnboardingClaims | None, bool]:
    """(claims, json_mode); claims None when no valid credential; raises ValueError on bad JSON."""
    if "application/json" in request.headers.get("content-type", ""):
        body = parse_json(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        token = body.get("token")
        if token is None:
            return current_owner(request, allow_session=False), True
        if not isinstance(token, str):
            raise ValueError("token must be a string")
        try:
            return onboarding_token.verify(token, secret=activation_deps(request).settings.jwt_secret), True
        except InvalidToken:
            return None, True
    return current_owner(request), False


async def _salon_if_still_owner(request: Request, claims: OnboardingClaims) -> tuple[bool, Salon | None]:
    """(still the owner, the salon read once for the whole activation). No salon: activation
    says so itself."""
    async with activation_deps(request).pool.acquire() as conn:
        salon = await salons.by_yclients_id(conn, claims.yclients_salon_id)
    return salon is None or opens(salon, claims), salon


def _json(outcome: Outcome, request: Request, yclients_salon_id: YclientsSalonId,
          install: branches.InstallOutcome) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if outcome.retry_after:
        headers["Retry-After"] = str(outcome.retry_after)
    # A chain's install reports each branch (a single salon's answer stays as it was).
    each = {"branches": [{"salon_id": b.yclients_salon_id, "success": b.outcome.ok, "code": b.outcome.code}
                         for b in install.branches]} if install.total > 1 else {}
    if outcome.ok:
        body: dict[str, Any] = {"success": True, "salon_id": yclients_salon_id, "redirect_url": outcome.redirect_url,
                                **each}
        if outcome.already_active:
            body["already_active"] = True
        return JSONResponse(body, headers=headers)
    t = translator(pick_language(request))
    body = {"success": False, "code": outcome.code,
            "message": t(outcome.message_key, done=install.done, total=install.total), **each}
    if outcome.code == "CONCURRENT_ACTIVATION":
        body["error"] = "Activation already in progress"
    if outcome.retry_after:
        body["retry_after"] = outcome.retry_after
    if outcome.code == "NOT_INSTALLED_AT_YCLIENTS":
        body["marketplace_url"] = activation_deps(request).settings.marketplace_url
    return JSONResponse(body, status_code=outcome.status_code, headers=headers)


def panel_for(outcome: Outcome, *, htmx: bool = True) -> str:
    if outcome.ok:
        return "done"
    if outcome.code == "ACTIVATION_BUSY" and htmx:
        # Re-posts by itself after a countdown. Without JS nothing counts down: the plain
        # error sentence and its button stay the answer there.
        return "busy"
    if outcome.code == "CONCURRENT_ACTIVATION":
        return "in_progress"
    if outcome.code == "PARTIAL_ACTIVATION":
        return "partial"
    if outcome.code == "WHATSAPP_NOT_CONNECTED":
        return "waiting_whatsapp"
    return "error"


def _retry_in(outcome: Outcome) -> dict[str, int]:
    """When the busy panel re-posts: Retry-After stretched by a random factor between 1 and 2
    (jitter), so the owners of one burst come back spread out rather than as another burst."""
    if not outcome.retry_after:
        return {}
    retry_ms = round(outcome.retry_after * 1000 * random.uniform(1.0, 2.0))
    return {"retry_in_ms": retry_ms, "retry_in_s": math.ceil(retry_ms / 1000)}


def activate_endpoint(whole_page: WholePage) -> Callable[[Request], Awaitable[Response]]:
    """The activation handler, given the page it is part of (for no-JS answers), which it
    must not import: that page composes this panel."""

    async def endpoint(request: Request) -> Response:
        return await activate(request, whole_page)

    return endpoint


async def activate(request: Request, whole_page: WholePage) -> Response:
    try:
        claims, json_mode = await _claims(request)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"success": False, "code": "BAD_REQUEST", "message": "Send JSON like {\"token\": \"...\"}"},
                            status_code=400)
    still_owner, salon = await _salon_if_still_owner(request, claims) if claims is not None else (False, None)
    if not still_owner:
        claims = None  # the salon was handed over or installed anew by another YClients user
    if claims is None:
        if json_mode or (not is_htmx(request) and "application/json" in request.headers.get("accept", "")):
            return JSONResponse({"success": False, "code": "UNAUTHORIZED", "message": "Invalid or expired token"},
                                status_code=401)
        return redirect(request, "/onboarding")  # HX-Redirect for htmx, else a 303

    yclients_salon_id = YclientsSalonId(claims.yclients_salon_id)
    if (limited := await over_limit(request, "owner", str(yclients_salon_id), as_json=json_mode)) is not None:
        return limited
    install = await branches.activate_install(activation_deps(request), yclients_salon_id, salon)
    outcome = install.outcome
    if json_mode:
        return _json(outcome, request, yclients_salon_id, install)
    if outcome.ok and outcome.redirect_url and not outcome.already_active:
        return redirect(request, outcome.redirect_url)  # the whole page goes to YClients
    htmx = is_htmx(request)
    context = {"panel": panel_for(outcome, htmx=htmx), "message_key": outcome.message_key,
               "retry_after": outcome.retry_after, **_retry_in(outcome),
               "back_url": activation_deps(request).settings.marketplace_url,
               "branches_done": install.done, "branches_total": install.total}
    if htmx:
        # 200 even for refusals: htmx swaps it, and the panel itself says what happened.
        return render(request, "partials/activation.html", context)
    return await whole_page(request, context, outcome.status_code)


def routes(whole_page: WholePage) -> list[BaseRoute]:
    """`whole_page`: the page around the activation panel (the onboarding steps), given by
    the app since that page sits above this package."""
    return [Route("/marketplace/activate", activate_endpoint(whole_page), methods=["POST"])]
