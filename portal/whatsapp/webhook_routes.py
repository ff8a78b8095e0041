"""POST /webhook/whatsapp: the gateway's `session.status` notices.

Authenticated (HMAC on WAHA Plus, a shared-secret header on WAHA Core), then treated as a
hint: the link changes to what the gateway confirms, never to what the event claims.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.web.throttle import over_limit
from portal.whatsapp.deps import whatsapp_deps
from portal.whatsapp.gateway_events import GatewayUnconfirmed, Outcome, apply_update
from portal.whatsapp.link import InvalidWebhook, MalformedWebhook

log = logging.getLogger(__name__)


async def whatsapp_webhook(request: Request) -> Response:
    runtime = whatsapp_deps(request)
    # Per sending client, before any work: a flood of forged deliveries costs a counter.
    if (limited := await over_limit(request, "webhook_whatsapp", as_json=True)) is not None:
        return limited
    body = await request.body()
    try:
        update = runtime.gateway.parse_webhook(body, request.headers)
    except InvalidWebhook:
        runtime.metrics.webhook_delivery("whatsapp", "refused")
        log.warning("WhatsApp webhook refused: bad signature")
        return JSONResponse({"error": "invalid signature", "code": "INVALID_SIGNATURE"}, status_code=401)
    except MalformedWebhook as exc:
        return JSONResponse({"error": exc.safe_summary, "code": "MALFORMED"}, status_code=400)
    try:
        outcome = await apply_update(runtime, update)
    except GatewayUnconfirmed:
        runtime.metrics.webhook_delivery("whatsapp", "unconfirmed")
        # A 5xx makes the gateway deliver again later; nothing was changed meanwhile.
        return JSONResponse({"error": "gateway not reachable to confirm", "code": "UNCONFIRMED"},
                            status_code=503, headers={"Retry-After": "5"})
    runtime.metrics.webhook_delivery("whatsapp", outcome.value)
    if outcome is Outcome.IGNORED:
        log.info("WhatsApp webhook for an unknown session ignored", extra={"session": update.session[:64]})
        return JSONResponse({"ignored": True})
    if outcome is Outcome.DUPLICATE:
        return JSONResponse({"duplicate": True})  # 2xx: the sender must not deliver it again
    if outcome is Outcome.STALE:
        # Refused, not retried: a 4xx tells WAHA and Evolution not to deliver it again.
        log.warning("WhatsApp webhook refused: older than the event memory")
        return JSONResponse({"error": "event too old", "code": "STALE_EVENT"}, status_code=409)
    return JSONResponse({"ok": True})


def routes() -> list[BaseRoute]:
    return [Route("/webhook/whatsapp", whatsapp_webhook, methods=["POST"])]
