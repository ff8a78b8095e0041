"""The WhatsApp step's handlers: the widget's fragment, its start, the phone form (the
number read in the owner's country and confirmed as understood before a code is asked
for), and the way back from a pairing code to the QR.

Each poll says which page it comes from; a salon that belongs on another page now (its app
uninstalled, its onboarding over elsewhere) gets the page reloaded instead of a fragment.
htmx gets fragments (200 with the right content, even for a busy gateway, since htmx does
not swap errors); a browser without JavaScript gets a 303 back to the page.

The widget lives inside a page it does not own (the onboarding steps). What it needs of that
page, the activation panel that comes alive when the link connects and the whole page for a
no-JS form error, it is *given* as functions (`WidgetPages`), so the page imports the widget
and never the other way round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding.owner import current_owner, owner_salon
from portal.salons import marketplace_user_store
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.web.htmx import is_htmx, redirect
from portal.web.rendering import WholePage, render, request_language
from portal.web.request_input import parse_id
from portal.web.throttle import over_limit
from portal.whatsapp import service as linking
from portal.whatsapp.deps import WhatsAppDeps, whatsapp_deps
from portal.whatsapp.link import LinkStatus
from portal.whatsapp.link_view import LinkView
from portal.whatsapp.phones import PhoneError, country_name, parse_phone, region_of

ActivationPanel = Callable[[IntegrationStatus, bool], str]
# More of the page to bring up to date when the link moves (the onboarding steps' texts), by
# (integration status, WhatsApp connected); empty for none.
PageParts = Callable[[IntegrationStatus, bool], dict[str, Any]]


def _no_parts(integration_status: IntegrationStatus, connected: bool) -> dict[str, Any]:
    return {}


# A failed start retries by itself this many times, the pause doubling from WHATSAPP_RETRY_S
# up to a minute (about three minutes in all), then waits for the owner's button.
AUTO_RETRIES = 6
MAX_RETRY_PAUSE_S = 60


def _auto_retry(view: LinkView, attempt: int, base_s: float) -> dict[str, int] | None:
    if view.status is not LinkStatus.FAILED or attempt >= AUTO_RETRIES:
        return None
    return {"next_attempt": attempt + 1, "delay_s": max(1, int(min(base_s * 2 ** attempt, MAX_RETRY_PAUSE_S)))}


def page_of(integration_status: IntegrationStatus) -> str:
    """Which owner page shows a salon in this integration status: the salon's own page once
    active, a page saying so once the app is uninstalled, else the onboarding steps."""
    if integration_status == IntegrationStatus.ACTIVE:
        return "salon"
    return "removed" if integration_status == IntegrationStatus.UNINSTALLED else "onboarding"


def widget_context(request: Request, view: LinkView, *, attempt: int = 0,
                   salon_mode: bool = False) -> dict[str, Any]:
    """`salon_mode`: the widget sits on an active salon's own page, where it offers relink
    and disconnect. A connected link is watched on either page (the phone may unlink the
    device), and each poll says which page it comes from (`page`), so a salon that moved
    to another page behind it (uninstalled, activated elsewhere) reloads it."""
    runtime = whatsapp_deps(request)
    settings = runtime.settings
    attempt = max(attempt, view.failed_starts - 1)  # a reload goes on where the backoff was
    return {"view": view, "qr_svg": runtime.qr_images.svg, "poll_s": settings.qr_poll_interval_s,
            "retry": _auto_retry(view, attempt, settings.whatsapp_retry_s), "salon_mode": salon_mode,
            "page": "salon" if salon_mode else "onboarding",
            "watch_s": max(settings.qr_poll_interval_s, linking.connected_recheck_s(settings))}


async def _attempt(request: Request) -> int:
    """Which automatic retry this start is (the failed widget counts them); 0 for a click."""
    raw = (await request.form()).get("attempt")
    return parse_id(raw, minimum=0, maximum=99) or 0


def _moved(shown: str | None, belongs: str) -> bool:
    """Whether the page a poll comes from no longer shows the salon truthfully. An
    onboarding page whose salon became active stays: its own activation is on its way to
    YClients (a reload would race the redirect), and its widget's swap says "done"."""
    return shown is not None and shown != belongs and not (shown == "onboarding" and belongs == "salon")


def _page_moved(request: Request) -> Response:
    # The salon belongs on another page now (the app was uninstalled, or the onboarding
    # ended in another tab): the whole page reloads and shows where it stands.
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Refresh": "true", "Cache-Control": "no-store"})
    return RedirectResponse("/onboarding", status_code=303)


def _session_over(request: Request) -> Response:
    # The session ended (an hour passed): send the whole page to the explanation.
    response = redirect(request, "/onboarding")
    response.status_code = 401
    response.headers["HX-Refresh"] = "true"
    return response


@dataclass(frozen=True)
class WidgetPages:
    """The widget's handlers, bound to the page around them."""

    activation_panel: ActivationPanel
    whole_page: WholePage
    page_parts: PageParts = _no_parts

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/onboarding/whatsapp/status", self.link_status),
            Route("/onboarding/whatsapp/start", self.start_link, methods=["POST"]),
            Route("/onboarding/whatsapp/pairing-code", self.pairing_code, methods=["POST"]),
            Route("/onboarding/whatsapp/passkey-confirm", self.passkey_confirm, methods=["POST"]),
            Route("/onboarding/whatsapp/qr", self.back_to_qr, methods=["POST"]),
        ]

    def render_widget(self, request: Request, view: LinkView, integration_status: IntegrationStatus,
                      attempt: int = 0, *, phone_reset: bool = False) -> Response:
        """`phone_reset`: the phone form comes back clean (a code was shown: no stale error)."""
        # When the link connects, the Activation panel below comes alive in the same swap. An
        # active salon's widget is on the salon's own page (the onboarding is over).
        salon_mode = integration_status == IntegrationStatus.ACTIVE
        connected = view.status is LinkStatus.CONNECTED
        context = widget_context(request, view, attempt=attempt, salon_mode=salon_mode) | {
            "oob": True, "activation_panel": self.activation_panel(integration_status, connected),
            "back_url": whatsapp_deps(request).settings.marketplace_url, "phone_reset": phone_reset,
            **self.page_parts(integration_status, connected)}
        response = render(request, "partials/whatsapp_link.html", context, headers={"Cache-Control": "no-store"})
        return response

    async def link_status(self, request: Request) -> Response:
        owner = current_owner(request)
        poll = await linking.current_by_credential(whatsapp_deps(request), owner.yclients_salon_id) if owner else None
        if poll is None or owner is None or not poll.shown_to(owner.yclients_user_id):
            return _session_over(request)
        if _moved(request.query_params.get("page"), page_of(poll.integration_status)):
            return _page_moved(request)
        if is_htmx(request) and request.query_params.get("v") == poll.view.version:
            return Response(status_code=204)  # nothing changed: htmx keeps what it shows
        return self.render_widget(request, poll.view, poll.integration_status)

    async def start_link(self, request: Request) -> Response:
        return await self._act(request, linking.start, counts_attempts=True)

    async def back_to_qr(self, request: Request) -> Response:
        """From a pairing code back to the QR (the owner found a second phone to scan with)."""
        return await self._act(request, linking.back_to_qr)

    async def _act(self, request: Request, act: Callable[[WhatsAppDeps, Salon], Awaitable[LinkView]], *,
                   counts_attempts: bool = False) -> Response:
        """One of the widget's buttons, done for the owner's salon: the widget again for htmx,
        back to the page without JavaScript."""
        salon = await _acting_salon(request)
        if isinstance(salon, Response):
            return salon
        view = await act(whatsapp_deps(request), salon)
        if not is_htmx(request):
            return RedirectResponse("/onboarding", status_code=303)
        attempt = await _attempt(request) if counts_attempts else 0
        return self.render_widget(request, view, salon.integration_status, attempt)

    async def pairing_code(self, request: Request) -> Response:
        salon = await _acting_salon(request, limited=False)
        if isinstance(salon, Response):
            return salon
        form = await request.form()
        raw = form.get("phone")
        typed = raw if isinstance(raw, str) else ""
        try:
            phone = parse_phone(typed or None, await _owner_region(request, salon))
        except PhoneError:
            return await self._phone_form(request, {"phone_error": "whatsapp.phone_invalid", "phone_value": typed}, 422)
        if form.get("confirmed") != phone.digits:
            # First the number as understood ("+375 29 123-45-67, Беларусь"): a code asked
            # for a number the owner did not mean goes nowhere.
            country = country_name(phone.digits, request_language(request))
            return await self._phone_form(request, {"phone_value": phone.shown, "confirm": phone.digits,
                                                    "country": country}, 200)
        if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
            return limited
        view = await linking.request_pairing_code(whatsapp_deps(request), salon, phone.digits)
        if view.status is LinkStatus.AWAITING_SCAN and view.problem is not None:
            # The QR still works; the code was refused: say so beside the field, where the
            # next poll of the widget cannot wipe it.
            return await self._phone_form(request, {"phone_error": view.problem, "phone_value": phone.shown}, 503)
        if not is_htmx(request):
            return RedirectResponse("/onboarding", status_code=303)
        return self.render_widget(request, view, salon.integration_status, phone_reset=True)

    async def passkey_confirm(self, request: Request) -> Response:
        """The owner's "the codes match" in the passkey step."""
        return await self._act(request, linking.confirm_passkey)

    async def _phone_form(self, request: Request, context: dict[str, Any], status_code: int) -> Response:
        """The phone form again: with an error, or with the number as understood to confirm."""
        if is_htmx(request):
            # It belongs beside the field, not in the polled widget; htmx swaps only the
            # statuses its config names (422), so a gateway's refusal is a 200 there.
            return render(request, "partials/whatsapp_phone.html", context,
                          status_code=422 if status_code == 422 else 200,
                          headers={"HX-Retarget": "#link-phone", "HX-Reswap": "outerHTML"})
        return await self.whole_page(request, context, status_code)


async def _acting_salon(request: Request, *, limited: bool = True) -> Salon | Response:
    """The salon an owner's widget action is for, or the answer instead: no credential (the
    session is over), an uninstalled salon (the page moved), or over the owner's limit."""
    salon = await owner_salon(request)
    if salon is None:
        return _session_over(request) if is_htmx(request) else RedirectResponse("/onboarding", 303)
    if salon.integration_status == IntegrationStatus.UNINSTALLED:
        return _page_moved(request)
    if limited and (over := await over_limit(request, "owner", str(salon.yclients_salon_id))) is not None:
        return over
    return salon


async def _owner_region(request: Request, salon: Salon) -> str:
    """The country a typed number is read in: the owner's own number's, else the setting's."""
    runtime = whatsapp_deps(request)
    async with runtime.pool.acquire() as conn:
        own = await marketplace_user_store.owner_phone(conn, salon.pk)
    return region_of(own, runtime.settings.default_phone_region)


def routes(*, activation_panel: ActivationPanel, whole_page: WholePage,
           page_parts: PageParts = _no_parts) -> list[BaseRoute]:
    """The widget's routes, bound to the page around it (see `WidgetPages`)."""
    return WidgetPages(activation_panel=activation_panel, whole_page=whole_page, page_parts=page_parts).routes()
