"""POST /webhook/yclients: check, store (committed), answer; then process.

The 2xx goes out only after the delivery is committed, so a crash after the answer loses
nothing: the worker finishes whatever is still pending. Processing right here is only the
fast path.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.web.throttle import over_limit
from portal.yclients_webhooks import deliveries as yclients_webhooks
from portal.yclients_webhooks import worker as webhook_worker
from portal.yclients_webhooks.deliveries import WebhookRefused

log = logging.getLogger(__name__)


async def yclients_webhook(request: Request) -> Response:
    runtime = request.state.runtime
    if (limited := await over_limit(request, "webhook_yclients", as_json=True)) is not None:
        return limited
    body = await request.body()
    try:
        delivery = yclients_webhooks.parse(body, partner_token=runtime.settings.partner_token or "",
                                           application_id=runtime.settings.app_id)
    except WebhookRefused as exc:
        runtime.metrics.webhook_delivery("yclients", "refused")
        if exc.status == 403:
            log.warning("YClients webhook refused: partner token or application id mismatch")
        return JSONResponse({"success": False, "code": exc.code, "error": exc.reason}, status_code=exc.status)
    delivery_id, _ = await yclients_webhooks.store(
        runtime.pool, delivery, ttl_h=runtime.settings.webhook_idempotency_ttl_h)
    if delivery_id is None:  # a duplicate: the key is known and not yet expired
        runtime.metrics.webhook_delivery("yclients", "duplicate")
        return JSONResponse({"success": True, "duplicate": True})
    if delivery.event not in yclients_webhooks.KNOWN_EVENTS:
        runtime.metrics.webhook_delivery("yclients", "ignored")
        log.info("YClients webhook with an unknown event stored and ignored", extra={"event": delivery.event[:32]})
        return JSONResponse({"success": True, "ignored": True})
    done = await webhook_worker.process(runtime, delivery_id)
    runtime.metrics.webhook_delivery("yclients", "processed" if done else "deferred")
    return JSONResponse({"success": True, "processed": done})
