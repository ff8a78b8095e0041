"""POST /webhook/yclients: check, store (committed), answer; then process. An entity
webhook (it belongs elsewhere) is answered "ignored" at once and counted.

The 2xx goes out only after the delivery is committed, so a crash after the answer loses
nothing: the worker finishes whatever is still pending. Processing right here is only the
fast path.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.web.throttle import over_limit
from portal.yclients_webhooks import deliveries as yclients_webhooks
from portal.yclients_webhooks import entity_webhook_store
from portal.yclients_webhooks import worker as webhook_worker
from portal.yclients_webhooks.deliveries import EntityWebhook, WebhookRefused
from portal.yclients_webhooks.deps import WebhookDeps, webhook_deps

log = logging.getLogger(__name__)


async def yclients_webhook(request: Request) -> Response:
    runtime = webhook_deps(request)
    body = await request.body()
    if (entity := yclients_webhooks.entity_webhook(body)) is not None:
        # Before the rate limit: YClients' entity traffic must not use up the allowance its
        # lifecycle callbacks (from the same sender) need.
        return await _entity_webhook(runtime, entity)
    if (limited := await over_limit(request, "webhook_yclients", as_json=True)) is not None:
        return limited
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


async def _entity_webhook(runtime: WebhookDeps, entity: EntityWebhook) -> Response:
    """An entity webhook is for the receivers given at activation: a quick 2xx (a 4xx would
    only make YClients retry), counted for staff; the count must never fail the answer."""
    runtime.metrics.webhook_delivery("yclients", "entity_ignored")
    try:
        await entity_webhook_store.count(runtime.pool, entity.resource)
    except Exception as exc:
        log.warning("entity webhook count failed", extra={"error": type(exc).__name__})
    return JSONResponse({"success": True, "ignored": True, "reason": "entity webhook"})


def routes() -> list[BaseRoute]:
    return [Route("/webhook/yclients", yclients_webhook, methods=["POST"])]
