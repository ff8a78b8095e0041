"""GET /salon: an active salon's own page, where its owner comes back after the onboarding.

It says which number is connected and since when, whether the assistant is working, and
offers the two things an owner can do: relink WhatsApp and disconnect it, each behind a
confirmation (`GET /salon/relink|disconnect`, then the `POST`). When the link is lost (the
phone unlinked the device, the session failed, the owner disconnected), the same WhatsApp
widget as in the onboarding offers a new QR or pairing code in place. The integration with
YClients is never touched here: no activation call, no new API key.

Plain forms and links first (each action answers 303 back to the page), htmx on top (the
confirmation appears in place, the action answers with the widget).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.onboarding.owner import owner_with_salon
from portal.salon_pages.onboarding import onboarding_page
from portal.salons.store import Salon
from portal.web.htmx import is_htmx, redirect, vary_on_htmx
from portal.web.rendering import render
from portal.web.throttle import over_limit
from portal.whatsapp import LinkStatus, linking
from portal.whatsapp.linking import LinkView
from portal.whatsapp.widget import widget_context

ACTIONS = ("relink", "disconnect")
_LINKED = (LinkStatus.CONNECTED, LinkStatus.LINKING)


def routes() -> list[Route]:
    return [
        Route("/salon", salon_page),
        *[Route(f"/salon/{action}", confirm_action, methods=["GET"]) for action in ACTIONS],
        Route("/salon/relink", relink, methods=["POST"]),
        Route("/salon/disconnect", disconnect, methods=["POST"]),
    ]


def _not_for_this_salon(request: Request) -> Response:
    """No credential, or a salon still onboarding: the onboarding page knows what to say."""
    return redirect(request, "/onboarding")


async def salon_page(request: Request, extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    found = await owner_with_salon(request)
    if found is None or found[1].integration_status != "active":
        return _not_for_this_salon(request)
    salon = found[1]
    poll = await linking.current(request.state.runtime, salon.yclients_salon_id)
    if poll is None:
        return _not_for_this_salon(request)
    context = {"salon": salon, **widget_context(request, poll.view, salon_mode=True), **(extra or {})}
    response = render(request, "salon.html", context, status_code=status_code,
                      headers={"Cache-Control": "no-store"})
    return vary_on_htmx(response)


async def owner_page(request: Request, extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    """The whole page the owner is on (for a form error without JavaScript): the salon's own
    page once active, else the onboarding steps."""
    found = await owner_with_salon(request)
    if found is not None and found[1].integration_status == "active":
        return await salon_page(request, extra, status_code)
    return await onboarding_page(request, extra, status_code)


async def _active_salon(request: Request) -> Salon | None:
    found = await owner_with_salon(request)
    return found[1] if found is not None and found[1].integration_status == "active" else None


async def confirm_action(request: Request) -> Response:
    """The first step: what the action does, a button to do it, and a way back."""
    action = request.url.path.rsplit("/", 1)[-1]
    if await _active_salon(request) is None:
        return _not_for_this_salon(request)
    if is_htmx(request):
        response = render(request, "partials/salon_confirm.html", {"action": action},
                          headers={"Cache-Control": "no-store"})
    else:
        response = render(request, "salon_confirm.html", {"action": action}, headers={"Cache-Control": "no-store"})
    return vary_on_htmx(response)


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
    runtime = request.state.runtime
    poll = await linking.current(runtime, salon.yclients_salon_id)
    view = poll.view if poll is not None else LinkView(LinkStatus.IDLE)
    if view.status in _LINKED:
        await linking.disconnect(runtime, salon, by="owner", relink=relink)
        view = LinkView(LinkStatus.LOGGED_OUT)  # what was just stored
    if relink:
        view = await linking.start(runtime, salon)
    if not is_htmx(request):
        return RedirectResponse("/salon", status_code=303)
    return _widget(request, view)


def _widget(request: Request, view: LinkView) -> Response:
    # The widget in place, with the page's sentence, the confirmation's slot and the phone
    # form (the owner pressed a button: nothing typed to keep) out of band.
    context = widget_context(request, view, salon_mode=True) | {"oob": True, "phone_reset": True}
    response = render(request, "partials/whatsapp_link.html", context, headers={"Cache-Control": "no-store"})
    return vary_on_htmx(response)
