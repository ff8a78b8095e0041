"""What support staff can fix: disconnect a salon's WhatsApp, restart its session, mark a
failed activation for retry, and steer the QR circuit breaker. Every action is audited
(who, what, target, result), also when it fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from portal.runtime import Runtime
from portal.salons import event_store as events
from portal.support import audit_store as audit
from portal.whatsapp import LinkState, LinkStatus, session_name
from portal.whatsapp import store as links
from portal.whatsapp.linking import gateway_call

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str  # a sentence for staff


async def _salon_ids(runtime: Runtime, yclients_salon_id: int) -> int | None:
    async with runtime.pool.acquire() as conn:
        return await conn.fetchval("SELECT id FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)


async def disconnect(runtime: Runtime, actor: str, yclients_salon_id: int, reason: str) -> ActionResult | None:
    salon_id = await _salon_ids(runtime, yclients_salon_id)
    if salon_id is None:
        return None
    error = await gateway_call(runtime, runtime.gateway.logout(session_name(yclients_salon_id)))
    async with runtime.pool.acquire() as conn:
        await links.get_or_create(conn, salon_id, yclients_salon_id)
        await links.save_state(conn, salon_id, LinkState(LinkStatus.LOGGED_OUT), error=error)
        await events.record(conn, salon_id, "whatsapp_disconnected", {"by": actor, "reason": reason, "gateway_error": error})
    result = "ok" if error is None else f"error: gateway: {error}"
    await audit.record(runtime.pool, actor, "disconnect", f"salon:{yclients_salon_id}", result, {"reason": reason})
    if error:
        return ActionResult(False, f"Marked as disconnected, but the gateway refused the logout ({error}).")
    return ActionResult(True, "WhatsApp disconnected.")


async def restart_session(runtime: Runtime, actor: str, yclients_salon_id: int) -> ActionResult | None:
    salon_id = await _salon_ids(runtime, yclients_salon_id)
    if salon_id is None:
        return None
    name = session_name(yclients_salon_id)
    error = await gateway_call(runtime, runtime.gateway.restart(name))
    if error is None:
        async with runtime.pool.acquire() as conn:
            await links.get_or_create(conn, salon_id, yclients_salon_id)
            await links.save_state(conn, salon_id, LinkState(LinkStatus.STARTING))
            await events.record(conn, salon_id, "whatsapp_restarted", {"by": actor})
    await audit.record(runtime.pool, actor, "restart_session", f"salon:{yclients_salon_id}",
                       "ok" if error is None else f"error: gateway: {error}")
    return ActionResult(error is None, "Session restarted." if error is None else f"The gateway refused: {error}")


async def mark_for_retry(runtime: Runtime, actor: str, yclients_salon_id: int) -> ActionResult | None:
    salon_id = await _salon_ids(runtime, yclients_salon_id)
    if salon_id is None:
        return None
    async with runtime.pool.acquire() as conn, conn.transaction():
        # Back to the owner's Activate button; the landing window starts again so the
        # owner has the marketplace's hour to press it.
        changed = await conn.fetchval(
            "UPDATE salons SET integration_status = 'pending_whatsapp', last_error = NULL, landed_at = now(),"
            " updated_at = now() WHERE id = $1 AND integration_status = 'activation_failed' RETURNING id", salon_id)
        if changed:
            await events.record(conn, salon_id, "activation_retry_marked", {"by": actor})
    await audit.record(runtime.pool, actor, "mark_for_retry", f"salon:{yclients_salon_id}",
                       "ok" if changed else "refused: activation has not failed")
    if not changed:
        return ActionResult(False, "Only a failed activation can be marked for retry.")
    return ActionResult(True, "Marked for retry: the owner can press Activate again.")


async def steer_breaker(runtime: Runtime, actor: str, action: str) -> ActionResult:
    breaker = runtime.breaker
    if action == "reset":
        breaker.reset()
    elif action == "force_open":
        breaker.force_open()
    else:
        raise ValueError(action)
    log.warning("QR breaker changed by staff", extra={"action": action, "actor": actor})
    await audit.record(runtime.pool, actor, f"breaker_{action}", "breaker:qrGeneration", "ok",
                       {"state_after": breaker.stats()["state"]})
    return ActionResult(True, "Breaker reset: closed." if action == "reset" else "Breaker forced open.")
