"""The WhatsApp step of /onboarding: the widget's fragment, its start, and the phone form.

htmx gets fragments (200 with the right content, even for a busy gateway, since htmx does
not swap errors); a browser without JavaScript gets a 303 back to the page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.onboarding.owner import current_owner
from portal.salons import store as salons
from portal.web.htmx import is_htmx, vary_on_htmx
from portal.web.rendering import render
from portal.web.throttle import over_limit
from portal.whatsapp import linking
from portal.whatsapp.linking import LinkView
from portal.whatsapp.phones import PhoneError, normalise_phone


def widget_context(request: Request, view: LinkView) -> dict:
    runtime = request.state.runtime
    return {"view": view, "qr_svg": runtime.qr_images.svg, "poll_s": runtime.settings.qr_poll_interval_s}


def render_widget(request: Request, view: LinkView, integration_status: str, status_code: int = 200) -> Response:
    # When the link connects, the Activation panel below comes alive in the same swap.
    from portal.onboarding.page import activation_panel

    context = widget_context(request, view) | {
        "oob": True, "activation_panel": activation_panel(integration_status, True),
        "back_url": request.state.runtime.settings.marketplace_url}
    response = render(request, "partials/whatsapp_link.html", context, status_code=status_code,
                      headers={"Cache-Control": "no-store"})
    return vary_on_htmx(response)


async def _owner_salon(request: Request):
    owner = current_owner(request)
    if owner is None:
        return None
    async with request.state.runtime.pool.acquire() as conn:
        return await salons.by_yclients_id(conn, owner.yclients_salon_id)


def _session_over() -> Response:
    # The session ended (an hour passed): send the whole page to the explanation.
    return Response(status_code=401, headers={"HX-Redirect": "/onboarding", "HX-Refresh": "true"})


async def link_status(request: Request) -> Response:
    owner = current_owner(request)
    poll = await linking.current(request.state.runtime, owner.yclients_salon_id) if owner else None
    if poll is None:
        return _session_over()
    if is_htmx(request) and request.query_params.get("v") == poll.view.version:
        return Response(status_code=204)  # nothing changed: htmx keeps what it shows
    return render_widget(request, poll.view, poll.integration_status)


async def start_link(request: Request) -> Response:
    salon = await _owner_salon(request)
    if salon is None:
        return _session_over() if is_htmx(request) else RedirectResponse("/onboarding", 303)
    if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
        return limited
    view = await linking.start(request.state.runtime, salon)
    if not is_htmx(request):
        return RedirectResponse("/onboarding", status_code=303)
    return render_widget(request, view, salon.integration_status)


async def pairing_code(request: Request) -> Response:
    salon = await _owner_salon(request)
    if salon is None:
        return _session_over() if is_htmx(request) else RedirectResponse("/onboarding", 303)
    form = await request.form()
    raw = form.get("phone")
    try:
        phone = normalise_phone(raw if isinstance(raw, str) else None)
    except PhoneError:
        context = {"phone_error": "whatsapp.phone_invalid", "phone_value": raw if isinstance(raw, str) else ""}
        if is_htmx(request):
            # The error belongs beside the field, not in the polled widget.
            return render(request, "partials/whatsapp_phone.html", context, status_code=422,
                          headers={"HX-Retarget": "#link-phone", "HX-Reswap": "outerHTML"})
        from portal.onboarding.page import onboarding_page

        return await onboarding_page(request, extra=context, status_code=422)
    if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
        return limited
    view = await linking.request_pairing_code(request.state.runtime, salon, phone)
    if not is_htmx(request):
        return RedirectResponse("/onboarding", status_code=303)
    return render_widget(request, view, salon.integration_status)
