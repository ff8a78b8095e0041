"""GET /auth/yclients/redirect: the owner arrives from the YClients marketplace.

The signature proves the user; `admission.py` decides whether that user may open the salon.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal.onboarding import admission
from portal.onboarding import token as onboarding_token
from portal.onboarding.deps import onboarding_deps
from portal.onboarding.landing import LandingError, parse_landing
from portal.onboarding.owner import SESSION_KEY
from portal.salons import event_store as events
from portal.web.rendering import error_response, wants_json
from portal.web.throttle import over_limit

log = logging.getLogger(__name__)


async def yclients_redirect(request: Request) -> Response:
    runtime = onboarding_deps(request)
    settings = runtime.settings
    if (limited := await over_limit(request, "landing")) is not None:
        return limited
    if not settings.partner_token:
        log.error("landing refused: partner token not configured")
        return error_response(request, 503, "NOT_CONFIGURED", "error.not_configured", next_step_key=None)
    try:
        landing = parse_landing(request.query_params, partner_token=settings.partner_token,
                                allow_unsigned=settings.allow_unsigned_landing)
    except LandingError as exc:
        log.warning("landing refused", extra={"code": exc.code, "status": exc.status})
        return error_response(request, exc.status, exc.code, exc.message_key)
    if not landing.signed:
        log.warning("unsigned landing accepted (ALLOW_UNSIGNED_LANDING)",
                    extra={"yclients_salon_id": landing.yclients_salon_id})

    try:
        admitted = await admission.admit(runtime.pool, runtime.install_statuses, runtime.admission_rules, landing)
    except admission.Refused as refused:
        why = refused.refusal
        log.warning("landing refused", extra={"code": why.code, "yclients_salon_id": landing.yclients_salon_id})
        headers = {"Retry-After": str(why.retry_after_s)} if why.retry_after_s else None
        return error_response(request, why.status, why.code, why.message_key, next_step_key=why.next_step_key,
                              headers=headers)
    for salon, note in zip(admitted.salons, admitted.notes, strict=True):
        await events.record_quietly(runtime.pool, salon.pk, "landed",
                                    {**note, "signed": landing.signed, "status": salon.integration_status,
                                     "branches": len(admitted.salons)})

    salon = admitted.lead or admitted.salons[0]  # a chain's owner walks its lead's onboarding
    ttl = settings.onboarding_token_ttl_s
    token = onboarding_token.issue(salon.yclients_salon_id, secret=settings.jwt_secret, ttl_s=ttl,
                                   yclients_user_id=landing.user.id if landing.user else None)
    onboarding_url = f"{settings.base_url}/onboarding"
    if wants_json(request):
        return JSONResponse({"token": token, "expires_in": ttl, "onboarding_url": onboarding_url},
                            headers={"Cache-Control": "no-store"})
    request.session[SESSION_KEY] = token
    return RedirectResponse("/onboarding", status_code=303, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [Route("/auth/yclients/redirect", yclients_redirect)]
