"""The owner's JSON API (compatible with the earlier integration): QR and link status.

Bearer onboarding token only: the salon comes from the token, never from the request, so
one salon's token can never read or change another's.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding.owner import current_owner, owner_salon
from portal.web.throttle import over_limit
from portal.whatsapp import service as linking
from portal.whatsapp.deps import whatsapp_deps
from portal.whatsapp.link import LinkStatus

NO_STORE = {"Cache-Control": "no-store"}


def _unauthorized() -> JSONResponse:
    return JSONResponse({"success": False, "error": "Invalid or expired token", "code": "UNAUTHORIZED"},
                        status_code=401, headers={"WWW-Authenticate": "Bearer", **NO_STORE})


async def qr(request: Request) -> Response:
    salon = await owner_salon(request, allow_session=False)
    if salon is None:
        return _unauthorized()
    if (limited := await over_limit(request, "owner", str(salon.yclients_salon_id), as_json=True)) is not None:
        return limited
    view = await linking.start(whatsapp_deps(request), salon)
    if view.problem == linking.APP_REMOVED:
        return JSONResponse({"success": False, "code": "APP_UNINSTALLED",
                             "message": "The app is uninstalled in YClients; install it again to link WhatsApp."},
                            status_code=409, headers=NO_STORE)
    if view.retry_after is not None:
        retry = math.ceil(view.retry_after)
        return JSONResponse(
            {"error": "Service temporarily unavailable", "code": "SERVICE_UNAVAILABLE",
             "message": "The WhatsApp gateway is recovering; try again shortly.", "retry_after": retry},
            status_code=503, headers={"Retry-After": str(retry), **NO_STORE})
    if view.status is LinkStatus.FAILED:
        return JSONResponse({"success": False, "code": "GATEWAY_ERROR", "status": view.status.value,
                             "message": "The WhatsApp gateway could not start the session; try again."},
                            status_code=502, headers=NO_STORE)
    return JSONResponse({
        "success": True, "qr": view.qr, "status": view.status.value,
        "session_id": f"salon-{salon.yclients_salon_id}",
        "expires_in": math.floor(view.qr_expires_in) if view.qr_expires_in is not None else None,
    }, headers=NO_STORE)


async def status(request: Request) -> JSONResponse:
    owner = current_owner(request, allow_session=False)
    poll = await linking.current_by_credential(whatsapp_deps(request), owner.yclients_salon_id) if owner else None
    if poll is None or owner is None or not poll.shown_to(owner.yclients_user_id):
        return _unauthorized()
    view = poll.view
    answer = {"status": view.status.value, "connected": view.status is LinkStatus.CONNECTED,
              "phone": view.phone_masked, "has_qr": view.qr is not None}
    if view.status is LinkStatus.PASSKEY:  # only then: the earlier integration's shape stays as it was
        answer["passkey_code"] = view.passkey_code  # the code to compare with the phone's, if any
    return JSONResponse(answer, headers=NO_STORE)


def routes() -> list[BaseRoute]:
    return [
        Route("/marketplace/api/qr", qr, methods=["POST"]),
        Route("/marketplace/api/status", status),
    ]
