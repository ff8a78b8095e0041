"""The support dashboard under /admin: sign-in, overview, salons, one salon, system, audit.

Every page needs the staff cookie; anything else (no cookie, an owner's session or token)
is sent to the sign-in page. Actions are two-step (a confirmation page, then a POST) and
audited in `support_actions`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal import __version__
from portal.activation import intent_store
from portal.salons import event_store
from portal.salons.ids import YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.support import audit_store as audit
from portal.support import filters, staff
from portal.support import service as support_actions
from portal.support import store as support
from portal.support.api_routes import yclients_salon_id_of
from portal.support.deps import remember_staff, signed_in_staff, support_deps
from portal.support.service import ActionResult
from portal.support.wording import Wording
from portal.web.htmx import is_htmx, redirect
from portal.web.i18n import labeler, translator
from portal.web.rate_limits import Decision, RateLimits, client_key, name_key
from portal.web.rendering import render, request_language
from portal.web.throttle import over_limit
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.link import session_name
from portal.yclients_webhooks import entity_webhook_store
from portal.yclients_webhooks import store as webhook_store

Handler = Callable[[Request], Awaitable[Response]]

ACTIONS = {
    "disconnect": ("Disconnect WhatsApp",
                   "Logs the salon's WhatsApp session out at the gateway. The owner must link again."),
    "restart": ("Restart the WhatsApp session",
                "Restarts the session at the gateway; a linked phone reconnects by itself."),
    "retry": ("Mark activation for retry",
              "Puts a failed activation back to the owner's Activate button, with a fresh hour."),
    "erase": ("Erase personal data",
              "Erases the owner's name, phone and e-mail and the WhatsApp number now, and logs a linked "
              "WhatsApp session out (else the gateway would report the number again). This cannot be undone."),
    "hand_over": ("Hand the salon over to another YClients user",
                  "From now on only that YClients user can open the salon from the marketplace; the current "
                  "owner's open pages stop working. For a salon whose installer left."),
}


def _t(request: Request) -> Callable[..., str]:
    return translator(request_language(request))


def _why(request: Request) -> Callable[[str | None, str | None], str]:
    """"Needs attention" arrives as a code (support/store.py ATTENTION_CODES); this says it in
    the page's language, a salon `stuck` with the link step it is stuck in."""
    t, label = _t(request), labeler(request_language(request))

    def why(code: str | None, link_status: str | None = None) -> str:
        if not code:
            return ""
        if code == "stuck":
            return t("admin.attention.stuck", status=label("link", link_status))
        return label("attention", code)

    return why


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context = {"staff": signed_in_staff(request), "why": _why(request),
               "words": Wording(request_language(request)), **context}
    return render(request, name, context, status_code=status_code, headers={"Cache-Control": "no-store"})


def staff_only(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        user = staff.current_staff(request)
        if user is None:
            return redirect(request, "/admin/login")
        remember_staff(request, user)
        if request.method == "POST" and (limited := await over_limit(request, "admin")) is not None:
            return limited
        return await handler(request)

    guarded.__name__ = handler.__name__
    return guarded


async def login_form(request: Request) -> Response:
    if staff.current_staff(request):
        return RedirectResponse("/admin", status_code=303)
    return render(request, "admin/login.html", {"error": None})


async def login(request: Request) -> Response:
    form = await request.form()
    username, password = str(form.get("username") or "")[:100], str(form.get("password") or "")[:200]
    runtime = support_deps(request)
    limits = staff.login_limits(client_key(request), name_key(username))
    if (decision := await _login_refused(runtime.rate_limits, limits)) is not None:
        await audit.record_alone(runtime.pool, "anonymous", "login", None, "refused: rate limited")
        return render(request, "admin/login.html", {"error": _t(request)("admin.login_limited")},
                      status_code=429, headers=decision.headers())
    # scrypt is CPU work: off the event loop, so one login cannot stall every poll.
    ok = await asyncio.to_thread(staff.check_login, runtime.settings, username, password)
    if not ok:
        for scope, key in limits:  # failures only: the real person signing in costs nothing
            await runtime.rate_limits.hit(scope, key)
        await audit.record_alone(runtime.pool, "anonymous", "login", None, "refused")
        return render(request, "admin/login.html", {"error": _t(request)("admin.login_wrong")}, status_code=401)
    response = RedirectResponse("/admin", status_code=303)
    staff.sign_in(response, runtime.settings, username)
    await audit.record_alone(runtime.pool, f"staff:{username}", "login", None, "ok")
    return response


async def _login_refused(rate_limits: RateLimits, limits: tuple[tuple[str, str], ...]) -> Decision | None:
    """The refusing decision, or None: the password is to be checked. The client's own limits
    refuse outright. The per-user ceiling counts failures from everywhere, so refusing every
    client past it would let guessers lock the real person out: past it, a client that
    already failed at this name waits, and one that has not (the real person, elsewhere) is
    checked; each guessing address then gets one guess per window instead of several."""
    own: Decision | None = None
    for scope, key in limits:
        decision = await rate_limits.peek(scope, key)
        if scope != staff.USER_CEILING:
            if not decision.allowed:
                return decision
            if scope == "login_user_client":
                own = decision
        elif not decision.allowed and own is not None and own.remaining < own.limit:
            return decision
    return None


async def logout(request: Request) -> Response:
    response = RedirectResponse("/admin/login", status_code=303)
    staff.sign_out(response, support_deps(request).settings)
    return response


@staff_only
async def overview(request: Request) -> Response:
    pool = support_deps(request).pool
    data = await support.overview(pool)
    # Activations whose outcome at YClients is unknown (the worker reconciles them), and
    # installs YClients reports that this portal never attempted (a human must look).
    data["intents"] = await intent_store.unfinished(pool, older_than_s=0)
    data["foreign_installs"] = await intent_store.foreign_installs(pool)
    # Landings refused because another YClients user holds the salon, or its install is not ours.
    data["landing_alerts"] = await event_store.landing_alerts(pool)
    return _page(request, "admin/overview.html", data)


@staff_only
async def salons(request: Request) -> Response:
    try:
        f = filters.parse_filter(request.query_params)
    except filters.BadFilter:
        status, link = request.query_params.get("status"), request.query_params.get("link")
        error = (_t(request)("admin.filter_bad_status", statuses=", ".join(filters.STATUSES))
                 if status and status not in filters.STATUSES else
                 _t(request)("admin.filter_bad_status", statuses=", ".join(filters.LINK_STATUSES))
                 if link and link not in filters.LINK_STATUSES else _t(request)("admin.filter_bad_page"))
        return _page(request, "admin/salons.html", {"error": error, "rows": [], "total": 0,
                                                     "f": filters.SalonFilter(), "statuses": filters.STATUSES,
                                                     "link_statuses": filters.LINK_STATUSES,
                                                     "pages": 0}, status_code=400)
    rows, total = await support.salons_page(support_deps(request).pool, f)
    context = {"rows": rows, "total": total, "f": f, "statuses": filters.STATUSES,
               "link_statuses": filters.LINK_STATUSES,
               "pages": max(1, -(-total // support.PAGE_SIZE)), "error": None}
    if is_htmx(request) and request.headers.get("hx-target") == "salon-table":
        return _page(request, "admin/partials/salon_table.html", context)
    return _page(request, "admin/salons.html", context)


@staff_only
async def salon(request: Request) -> Response:
    yclients_salon_id = yclients_salon_id_of(request)
    detail = await support.salon_detail(support_deps(request).pool, yclients_salon_id) if yclients_salon_id else None
    if detail is None:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    return _page(request, "admin/salon.html", {"salon": detail, "actions": available_actions(detail),
                                                "message": request.query_params.get("message")})


def available_actions(detail: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The actions that can do something for this salon: a retry only for a failed activation
    (offering it elsewhere only to refuse after the confirmation helps nobody)."""
    return {key: pair for key, pair in ACTIONS.items()
            if key != "retry" or detail["integration_status"] == IntegrationStatus.ACTIVATION_FAILED}


def _confirm(request: Request, detail: dict[str, Any], action: str, error: str | None = None) -> Response:
    """The first step of an action: what it does, and the button (with the reason field) to do it."""
    label = labeler(request_language(request))  # ACTIONS' English when an action has no translation
    title, explanation = (label("action", action, ACTIONS[action][0]),
                          label("action", f"{action}_explain", ACTIONS[action][1]))
    salon_url = f"/admin/salons/{detail['yclients_salon_id']}"
    return _page(request, "admin/confirm.html", {
        "salon": detail, "action": action, "title": title, "explanation": explanation, "error": error,
        "yes": label("action", f"{action}_yes", title), "post_to": f"{salon_url}/{action}", "hidden": {},
        "cancel_url": salon_url}, status_code=422 if error else 200)


async def _action_target(request: Request) -> tuple[YclientsSalonId, str, dict[str, Any]] | None:
    yclients_salon_id, action = yclients_salon_id_of(request), request.path_params["action"]
    if yclients_salon_id is None or action not in ACTIONS:
        return None
    detail = await support.salon_detail(support_deps(request).pool, yclients_salon_id)
    return (yclients_salon_id, action, detail) if detail is not None else None


@staff_only
async def confirm_salon_action(request: Request) -> Response:
    """GET (and the HEAD Starlette adds to it): the question only, never the action."""
    target = await _action_target(request)
    if target is None:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    return _confirm(request, target[2], target[1])


@staff_only
async def salon_action(request: Request) -> Response:
    """POST only: the route admits no other method."""
    target = await _action_target(request)
    if target is None:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    yclients_salon_id, action, detail = target
    form = await request.form()
    reason = support_actions.clean_reason(form.get("reason")) or ""
    if action in ("disconnect", "hand_over") and not reason:
        return _confirm(request, detail, action, error=_t(request)("admin.reason_required"))
    new_owner = support_actions.yclients_user_id(form.get("user_id"))
    if action == "hand_over" and new_owner is None:
        return _confirm(request, detail, action, error=_t(request)("admin.user_id_required"))
    result = await _perform(request, action, yclients_salon_id, reason, new_owner)
    if result is None:  # the salon went away between the page and the action
        return _page(request, "admin/not_found.html", {}, status_code=404)
    message = result.said_in(_t(request))
    return RedirectResponse(f"/admin/salons/{yclients_salon_id}?{urlencode({'message': message})}",
                            status_code=303)


async def _perform(request: Request, action: str, yclients_salon_id: YclientsSalonId,
                   reason: str, new_owner: int | None) -> ActionResult | None:
    runtime, actor = support_deps(request), f"staff:{signed_in_staff(request)}"
    if action == "disconnect":
        return await support_actions.disconnect(runtime, actor, yclients_salon_id, reason)
    if action == "restart":
        return await support_actions.restart_session(runtime, actor, yclients_salon_id)
    if action == "erase":
        return await support_actions.erase_personal_data(runtime, actor, yclients_salon_id)
    if action == "hand_over" and new_owner is not None:
        return await support_actions.hand_over(runtime, actor, yclients_salon_id, new_owner, reason)
    return await support_actions.mark_for_retry(runtime, actor, yclients_salon_id)


async def _probe(call: Awaitable[object], timeout_s: float = 3.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await call
    except Exception as exc:
        return {"ok": False, "latency_ms": None, "error": summarize_error(exc)}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "error": None}


@staff_only
async def system(request: Request) -> Response:
    runtime = support_deps(request)
    gateway, partner = await asyncio.gather(
        _probe(runtime.gateway.get_state(session_name(1))),
        _probe(runtime.partner.ping(runtime.settings.app_id)))
    pool_stats = runtime.pool_sample()
    backlog = await support.webhook_backlog(runtime.pool, failing_after=webhook_store.ATTENTION_AFTER_ATTEMPTS)
    backlog["failed"] = await webhook_store.count_failed(runtime.pool)
    backlog["entity_ignored"] = await entity_webhook_store.recent(runtime.pool)
    breaker_seen, instances_running = await runtime.breaker.seen(runtime.breaker.version)
    return _page(request, "admin/system.html", {
        "backlog": backlog,
        "breaker": runtime.breaker.stats(), "breaker_seen": breaker_seen, "instances_running": instances_running,
        "pool": pool_stats, "gateway": gateway, "partner": partner,
        "flags": {"USE_TRANSACTION_ACTIVATION": runtime.settings.use_transaction_activation,
                  "SANDBOX": runtime.settings.sandbox, "WHATSAPP_GATEWAY": runtime.settings.whatsapp_gateway},
        "version": __version__, "message": request.query_params.get("message")})


@staff_only
async def breaker_action(request: Request) -> Response:
    """GET asks (what the action does to every instance), POST acts, like every staff action."""
    form = await request.form() if request.method == "POST" else request.query_params
    action = form.get("action")
    if not isinstance(action, str) or action not in ("reset", "force_open"):
        return RedirectResponse(f"/admin/system?{urlencode({'message': _t(request)('admin.result.unknown_action')})}",
                                status_code=303)
    if request.method != "POST":
        t = _t(request)
        return _page(request, "admin/confirm.html", {
            "salon": None, "action": action, "title": t(f"admin.breaker_{action}"),
            "explanation": t(f"admin.breaker_{action}_explain"), "yes": t(f"admin.breaker_{action}_yes"),
            "post_to": "/admin/system/breaker", "hidden": {"action": action}, "cancel_url": "/admin/system"})
    actor = f"staff:{signed_in_staff(request)}"
    result = await support_actions.steer_breaker(support_deps(request), actor, action)
    return RedirectResponse(f"/admin/system?{urlencode({'message': result.said_in(_t(request))})}", status_code=303)


@staff_only
async def audit_page(request: Request) -> Response:
    entries = await audit.recent(support_deps(request).pool, limit=200)
    return _page(request, "admin/audit.html", {"entries": entries})


def routes() -> list[BaseRoute]:
    """The staff dashboard, behind the staff cookie."""
    return [
        Route("/admin/login", login_form, methods=["GET"]),
        Route("/admin/login", login, methods=["POST"]),
        Route("/admin/logout", logout, methods=["POST"]),
        Route("/admin", overview),
        Route("/admin/salons", salons),
        Route("/admin/salons/{salon_id}", salon),
        # GET (and so HEAD) asks, POST acts: each method its own handler.
        Route("/admin/salons/{salon_id}/{action}", confirm_salon_action, methods=["GET"]),
        Route("/admin/salons/{salon_id}/{action}", salon_action, methods=["POST"]),
        Route("/admin/system", system),
        Route("/admin/system/breaker", breaker_action, methods=["GET", "POST"]),
        Route("/admin/audit", audit_page),
    ]
