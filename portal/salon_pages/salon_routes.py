"""GET /salon: an active salon's own page, where its owner comes back after the onboarding.

It says which number is connected and since when, whether the assistant is working, and
offers the two things an owner can do: relink WhatsApp and disconnect it, each behind a
confirmation (`GET /salon/relink|disconnect`, then the `POST`). While the link works, the
confirmation also asks for the code the portal sends through the salon's own WhatsApp
(`POST /salon/code`; `whatsapp/phone_confirmation.py` says why): without the right code
nothing changes. When the link is lost (the phone unlinked the device, the session failed,
the owner disconnected), there is nothing to protect, and the same WhatsApp widget as in the
onboarding offers a new QR or pairing code in place. The integration with YClients is never
touched here: no activation call, no new API key.

Plain forms and links first (each action answers 303 back to the page), htmx on top (the
confirmation appears in place, the action answers with the widget).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding.owner import owner_with_salon
from portal.salon_pages.routes import onboarding_page_of
from portal.salons import store as salons
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.web.htmx import is_htmx, redirect
from portal.web.i18n import translator
from portal.web.rendering import render, request_language
from portal.web.throttle import over_limit
from portal.whatsapp import phone_confirmation as confirmation
from portal.whatsapp import service as linking
from portal.whatsapp.deps import whatsapp_deps
from portal.whatsapp.link import LinkStatus
from portal.whatsapp.link_view import LinkView
from portal.whatsapp.routes import widget_context

ACTIONS = ("relink", "disconnect")
_LINKED = (LinkStatus.CONNECTED, LinkStatus.LINKING)


def routes() -> list[BaseRoute]:
    return [
        Route("/salon", salon_page),
        *[Route(f"/salon/{action}", confirm_action, methods=["GET"]) for action in ACTIONS],
        Route("/salon/relink", relink, methods=["POST"]),
        Route("/salon/disconnect", disconnect, methods=["POST"]),
        Route("/salon/code", send_code, methods=["POST"]),
    ]


def _not_for_this_salon(request: Request) -> Response:
    """No credential, or a salon still onboarding: the onboarding page knows what to say."""
    return redirect(request, "/onboarding")


async def salon_page(request: Request, extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    found = await owner_with_salon(request)
    if found is None or found[1].integration_status != IntegrationStatus.ACTIVE:
        return _not_for_this_salon(request)
    return await _salon_page_of(request, found[1], extra, status_code)


async def _salon_page_of(request: Request, salon: Salon, extra: dict[str, Any] | None, status_code: int) -> Response:
    poll = await linking.current(whatsapp_deps(request), salon)
    context = {"salon": salon, "branches": await _install_branches(request, salon),
               **widget_context(request, poll.view, salon_mode=True), **(extra or {})}
    response = render(request, "salon.html", context, status_code=status_code,
                      headers={"Cache-Control": "no-store"})
    return response


async def _install_branches(request: Request, salon: Salon) -> list[Salon]:
    """A chain's branches served by this salon's WhatsApp (none for a single salon)."""
    if salon.install_lead_id is not None:
        return []
    async with whatsapp_deps(request).pool.acquire() as conn:
        members = await salons.branches(conn, salon.pk)
    return members if len(members) > 1 else []


async def owner_page(request: Request, extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    """The whole page the owner is on (for a form error without JavaScript): the salon's own
    page once active, else the onboarding steps."""
    found = await owner_with_salon(request)  # once: the page it picks takes the owner as found
    if found is not None and found[1].integration_status == IntegrationStatus.ACTIVE:
        return await _salon_page_of(request, found[1], extra, status_code)
    return await onboarding_page_of(request, found, extra, status_code)


async def _active_salon(request: Request) -> Salon | None:
    found = await owner_with_salon(request)
    return found[1] if found is not None and found[1].integration_status == IntegrationStatus.ACTIVE else None


async def confirm_action(request: Request) -> Response:
    """The first step: what the action does, a button to do it (with the code from WhatsApp
    while the link works), and a way back. Shows; never sends a code (only POST acts)."""
    action = request.url.path.rsplit("/", 1)[-1]
    salon = await _active_salon(request)
    if salon is None:
        return _not_for_this_salon(request)
    return await _confirmation(request, salon, action)


async def _confirmation(request: Request, salon: Salon, action: str, *, error: str | None = None,
                        status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The confirmation step in its current state: a page, or the fragment for htmx (an error
    from the action's form goes back into the step, not into the widget the form targets)."""
    runtime = whatsapp_deps(request)
    target = await confirmation.protected(runtime, salon)
    step = await confirmation.step(runtime, salon, target) if target is not None else None
    context = {"action": action, "step": step, "error": error, "actions": ACTIONS}
    headers = {"Cache-Control": "no-store", **(headers or {})}
    if is_htmx(request):
        if error is not None:
            headers |= {"HX-Retarget": "#salon-confirm", "HX-Reswap": "innerHTML"}
        response = render(request, "partials/salon_confirm.html", context, status_code=status_code, headers=headers)
    else:
        response = render(request, "salon_confirm.html", context, status_code=status_code, headers=headers)
    return response


async def send_code(request: Request) -> Response:
    """Send the owner a code through the salon's own WhatsApp (a new one replaces the last)."""
    salon = await _active_salon(request)
    if salon is None:
        return _not_for_this_salon(request)
    # (The field is not called "action": in a form, that name would shadow `form.action`.)
    action = (await request.form()).get("purpose")
    if action not in ACTIONS:
        action = "relink"
    if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
        return limited
    runtime, t = whatsapp_deps(request), translator(request_language(request))
    sent = await confirmation.send_code(runtime, salon, lambda code: t("salon.code_message", code=code))
    if sent is confirmation.Sent.TOO_SOON:
        target = await confirmation.protected(runtime, salon)
        wait = max(1, (await confirmation.step(runtime, salon, target)).resend_in if target else 1)
        return await _confirmation(request, salon, str(action), status_code=429,
                                   error=t("salon.code_too_soon", seconds=wait), headers={"Retry-After": str(wait)})
    if sent is confirmation.Sent.FAILED:
        # Like the widget's failed start: a state of the step, with the way to try again.
        return await _confirmation(request, salon, str(action), error=t("salon.code_send_failed"),
                                   status_code=200 if is_htmx(request) else 503)
    if not is_htmx(request):
        return RedirectResponse(f"/salon/{action}", status_code=303)
    return await _confirmation(request, salon, str(action))


async def relink(request: Request) -> Response:
    """Unlink the number (if linked) and show a new QR at once: the same number or another."""
    return await _act(request, relink=True)


async def disconnect(request: Request) -> Response:
    return await _act(request, relink=False)


async def _act(request: Request, *, relink: bool) -> Response:
    salon = await _active_salon(request)
    if salon is None:
        return _not_for_this_salon(request)
    if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
        return limited
    runtime = whatsapp_deps(request)
    if await confirmation.protected(runtime, salon) is not None:
        # The link works: only the code sent through it lets the owner change it.
        refused = await _refused_code(request, salon, "relink" if relink else "disconnect")
        if refused is not None:
            return refused
    view = (await linking.current(runtime, salon)).view
    if view.status in _LINKED:
        await linking.disconnect(runtime, salon, by="owner", relink=relink)
        view = LinkView(LinkStatus.LOGGED_OUT)  # what was just stored
    if relink:
        view = await linking.start(runtime, salon)
    if not is_htmx(request):
        return RedirectResponse("/salon", status_code=303)
    return _widget(request, view)


async def _refused_code(request: Request, salon: Salon, action: str) -> Response | None:
    """None when the form carries the right code (now used up); else the step again, 422,
    with what was wrong. Nothing else happens on a refusal."""
    given = (await request.form()).get("code")
    t = translator(request_language(request))
    if not isinstance(given, str) or not given.strip():
        return await _confirmation(request, salon, action, error=t("salon.code_missing"), status_code=422)
    checked = await confirmation.check_code(whatsapp_deps(request), salon, given)
    if checked is confirmation.Checked.CONFIRMED:
        return None
    key = "salon.code_wrong" if checked is confirmation.Checked.WRONG else "salon.code_expired"
    return await _confirmation(request, salon, action, error=t(key), status_code=422)


def _widget(request: Request, view: LinkView) -> Response:
    # The widget in place, with the page's sentence, the confirmation's slot and the phone
    # form (the owner pressed a button: nothing typed to keep) out of band.
    context = widget_context(request, view, salon_mode=True) | {"oob": True, "phone_reset": True}
    response = render(request, "partials/whatsapp_link.html", context, headers={"Cache-Control": "no-store"})
    return response
