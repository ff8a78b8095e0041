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

from portal import __version__
from portal.activation import intent_store
from portal.salons.ids import YclientsSalonId
from portal.support import actions as support_actions
from portal.support import audit_store as audit
from portal.support import staff
from portal.support import store as support
from portal.support.actions import ActionResult
from portal.support.admin_api import yclients_salon_id_of
from portal.web.htmx import is_htmx, redirect, vary_on_htmx
from portal.web.i18n import labeler, translator
from portal.web.rate_limits import client_key, name_key
from portal.web.rendering import render, request_language
from portal.web.throttle import over_limit
from portal.whatsapp import session_name
from portal.whatsapp.breaker import summarize_error
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
              "Erases the owner's name, phone and e-mail and the WhatsApp number now. This cannot be undone."),
    "release_links": ("Let the marketplace link work again",
                      "Forgets the YClients links this salon was opened with, so the owner can arrive with the "
                      "same link again (YClients may send the very same link after a reinstall)."),
}


def _t(request: Request) -> Callable[..., str]:
    return translator(request_language(request))


def _why(request: Request) -> Callable[[str | None], str]:
    """"Needs attention" arrives as an English phrase from the SQL (support/store.py); this
    says it in the page's language ("stuck in <link status>" included)."""
    t, label = _t(request), labeler(request_language(request))

    def why(text: str | None) -> str:
        if not text:
            return ""
        if text.startswith("stuck in "):
            return t("admin.attention.stuck in", status=label("link", text.removeprefix("stuck in ")))
        return label("attention", text)

    return why


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context = {"staff": request.state.staff, "why": _why(request), **context}
    return render(request, name, context, status_code=status_code, headers={"Cache-Control": "no-store"})


def staff_only(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        user = staff.current_staff(request)
        if user is None:
            return redirect(request, "/admin/login")
        request.state.staff = user
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
    runtime = request.state.runtime
    limits = staff.login_limits(client_key(request), name_key(username))
    for scope, key in limits:
        decision = await runtime.rate_limits.peek(scope, key)
        if not decision.allowed:
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


async def logout(request: Request) -> Response:
    response = RedirectResponse("/admin/login", status_code=303)
    staff.sign_out(response, request.state.runtime.settings)
    return response


@staff_only
async def overview(request: Request) -> Response:
    pool = request.state.runtime.pool
    data = await support.overview(pool)
    # Activations whose outcome at YClients is unknown (the worker reconciles them), and
    # installs YClients reports that this portal never attempted (a human must look).
    data["intents"] = await intent_store.unfinished(pool, older_than_s=0)
    data["foreign_installs"] = await intent_store.foreign_installs(pool)
    return _page(request, "admin/overview.html", data)


@staff_only
async def salons(request: Request) -> Response:
    try:
        f = support.parse_filter(request.query_params)
    except support.BadFilter:
        status = request.query_params.get("status")
        error = (_t(request)("admin.filter_bad_status", statuses=", ".join(support.STATUSES))
                 if status and status not in support.STATUSES else _t(request)("admin.filter_bad_page"))
        return _page(request, "admin/salons.html", {"error": error, "rows": [], "total": 0,
                                                     "f": support.SalonFilter(), "statuses": support.STATUSES,
                                                     "pages": 0}, status_code=400)
    rows, total = await support.salons_page(request.state.runtime.pool, f)
    context = {"rows": rows, "total": total, "f": f, "statuses": support.STATUSES,
               "pages": max(1, -(-total // support.PAGE_SIZE)), "error": None}
    if is_htmx(request) and request.headers.get("hx-target") == "salon-table":
        return vary_on_htmx(_page(request, "admin/partials/salon_table.html", context))
    return vary_on_htmx(_page(request, "admin/salons.html", context))


@staff_only
async def salon(request: Request) -> Response:
    yclients_salon_id = yclients_salon_id_of(request)
    detail = await support.salon_detail(request.state.runtime.pool, yclients_salon_id) if yclients_salon_id else None
    if detail is None:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    return _page(request, "admin/salon.html", {"salon": detail, "actions": ACTIONS,
                                                "message": request.query_params.get("message")})


def _confirm(request: Request, detail: dict[str, Any], action: str, error: str | None = None) -> Response:
    """The first step of an action: what it does, and the button (with the reason field) to do it."""
    label = labeler(request_language(request))  # ACTIONS' English when an action has no translation
    title, explanation = (label("action", action, ACTIONS[action][0]),
                          label("action", f"{action}_explain", ACTIONS[action][1]))
    return _page(request, "admin/confirm.html", {"salon": detail, "action": action, "title": title,
                                                  "explanation": explanation, "error": error},
                 status_code=422 if error else 200)


@staff_only
async def salon_action(request: Request) -> Response:
    yclients_salon_id, action = yclients_salon_id_of(request), request.path_params["action"]
    if yclients_salon_id is None or action not in ACTIONS:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    detail = await support.salon_detail(request.state.runtime.pool, yclients_salon_id)
    if detail is None:
        return _page(request, "admin/not_found.html", {}, status_code=404)
    if request.method == "GET":
        return _confirm(request, detail, action)
    reason = support_actions.clean_reason((await request.form()).get("reason")) or ""
    if action == "disconnect" and not reason:
        return _confirm(request, detail, action, error=_t(request)("admin.reason_required"))
    result = await _perform(request, action, yclients_salon_id, reason)
    if result is None:  # the salon went away between the page and the action
        return _page(request, "admin/not_found.html", {}, status_code=404)
    message = result.said_in(_t(request))
    return RedirectResponse(f"/admin/salons/{yclients_salon_id}?{urlencode({'message': message})}",
                            status_code=303)


async def _perform(request: Request, action: str, yclients_salon_id: YclientsSalonId,
                   reason: str) -> ActionResult | None:
    runtime, actor = request.state.runtime, f"staff:{request.state.staff}"
    if action == "disconnect":
        return await support_actions.disconnect(runtime, actor, yclients_salon_id, reason)
    if action == "restart":
        return await support_actions.restart_session(runtime, actor, yclients_salon_id)
    if action == "erase":
        return await support_actions.erase_personal_data(runtime, actor, yclients_salon_id)
    if action == "release_links":
        return await support_actions.release_landing_links(runtime, actor, yclients_salon_id)
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
    runtime = request.state.runtime
    gateway, partner = await asyncio.gather(
        _probe(runtime.gateway.get_state(session_name(1))),
        _probe(runtime.partner.ping(runtime.settings.app_id)))
    pool_stats = runtime.pool_sample()
    backlog = await support.webhook_backlog(runtime.pool, failing_after=webhook_store.ATTENTION_AFTER_ATTEMPTS)
    backlog["failed"] = await webhook_store.count_failed(runtime.pool)
    backlog["entity_ignored"] = await webhook_store.entity_webhooks_ignored(runtime.pool)
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
    form = await request.form()
    action = form.get("action")
    if not isinstance(action, str) or action not in ("reset", "force_open"):
        return RedirectResponse(f"/admin/system?{urlencode({'message': _t(request)('admin.result.unknown_action')})}",
                                status_code=303)
    result = await support_actions.steer_breaker(request.state.runtime, f"staff:{request.state.staff}", action)
    return RedirectResponse(f"/admin/system?{urlencode({'message': result.said_in(_t(request))})}", status_code=303)


@staff_only
async def audit_page(request: Request) -> Response:
    entries = await audit.recent(request.state.runtime.pool, limit=200)
    return _page(request, "admin/audit.html", {"entries": entries})
