"""GET /onboarding: the page shell with the three steps for the owner's own salon. An active
salon's onboarding is over: its owner is sent to the salon's own page (`salon_routes.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding.owner import owner_with_salon
from portal.onboarding.token import OnboardingClaims
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.web.rendering import format_local, render, request_language, timezone_of
from portal.whatsapp import service as linking
from portal.whatsapp.deps import whatsapp_deps
from portal.whatsapp.link import LinkStatus
from portal.whatsapp.routes import widget_context

STEP_KEYS = ("onboarding.step_whatsapp", "onboarding.step_activation", "onboarding.step_done")


def step_states(integration_status: IntegrationStatus, whatsapp_connected: bool) -> list[tuple[str, str]]:
    """Which of the three steps are done, current or still to come."""
    if integration_status == IntegrationStatus.ACTIVE:
        current = 3
    elif whatsapp_connected:
        current = 1
    else:
        current = 0
    states = ["done" if i < current else "current" if i == current else "todo" for i in range(3)]
    return list(zip(STEP_KEYS, states, strict=True))


def step_notes(integration_status: IntegrationStatus, whatsapp_connected: bool) -> tuple[str, str, str]:
    """Each step's sentence, matching where the salon stands (i18n keys)."""
    if integration_status == IntegrationStatus.ACTIVE:
        return "onboarding.whatsapp_done", "onboarding.activation_done", "activation.done"
    if whatsapp_connected:
        return "onboarding.whatsapp_done", "onboarding.activation_now", "onboarding.done_next"
    return "onboarding.whatsapp_next", "onboarding.activation_next", "onboarding.done_next"


def progress(integration_status: IntegrationStatus, whatsapp_connected: bool) -> dict[str, Any]:
    """The steps and their sentences, for the page and for the widget's out-of-band swap."""
    return {"steps": step_states(integration_status, whatsapp_connected),
            "step_notes": step_notes(integration_status, whatsapp_connected)}


def activation_panel(integration_status: IntegrationStatus, whatsapp_connected: bool) -> str:
    if integration_status == IntegrationStatus.ACTIVE:
        return "done"
    return "ready" if whatsapp_connected else "waiting_whatsapp"


async def onboarding_page(request: Request, extra: dict[str, Any] | None = None,
                          status_code: int = 200) -> Response:
    return await onboarding_page_of(request, await owner_with_salon(request), extra, status_code)


async def onboarding_page_of(request: Request, found: tuple[OnboardingClaims, Salon] | None,
                             extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    """The page for an owner already resolved (`owner_with_salon`): one lookup per request."""
    poll = await linking.current(whatsapp_deps(request), found[1]) if found else None
    if found is None or poll is None:  # no credential, or no such salon (any more)
        return render(request, "onboarding_start.html", status_code=401)
    owner, salon = found
    if salon.integration_status == IntegrationStatus.ACTIVE:
        return RedirectResponse("/salon", status_code=303)  # the onboarding is over
    if salon.integration_status == IntegrationStatus.UNINSTALLED:
        # The app was removed in YClients: nothing to link or activate until it is installed again.
        return render(request, "onboarding_removed.html",
                      {"salon": salon, "back_url": whatsapp_deps(request).settings.marketplace_url},
                      status_code=status_code, headers={"Cache-Control": "no-store"})
    view = poll.view
    connected = view.status is LinkStatus.CONNECTED
    context = {
        "panel": activation_panel(salon.integration_status, connected),
        "back_url": whatsapp_deps(request).settings.marketplace_url,
        "salon": salon,
        **progress(salon.integration_status, connected),
        # The salon's clock (DEFAULT_TIMEZONE) with the zone's name: "18:45 MSK".
        "expires_at": format_local(datetime.fromtimestamp(owner.expires_at, UTC), timezone_of(request), "%H:%M",
                                   request_language(request)),
        **widget_context(request, view),
        **(extra or {}),
    }
    response = render(request, "onboarding.html", context, status_code=status_code,
                      headers={"Cache-Control": "no-store"})
    return response


def routes() -> list[BaseRoute]:
    return [Route("/onboarding", onboarding_page)]
