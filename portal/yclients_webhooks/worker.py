"""Processing stored YClients deliveries, and the worker that finishes what is left.

A delivery is processed right after it is stored (in the request), and by the worker for
anything still pending: failures (retried with backoff), deliveries whose processing died
with the process (a claim has a lease, `locked_until`), and gateway cleanups of uninstalled
salons that the gateway refused. The worker also purges idempotency keys past their TTL.
Several instances can run it at once: claims are single-row atomic UPDATEs.
"""

from __future__ import annotations

import asyncio
import logging

from portal.runtime import Runtime
from portal.salons import event_store as events
from portal.whatsapp import session_name
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.linking import gateway_call

log = logging.getLogger(__name__)
LEASE_S = 60
ATTENTION_AFTER_ATTEMPTS = 3


def retry_delay_s(attempts: int) -> float:
    return min(2.0 ** attempts, 300.0)


async def process(runtime: Runtime, delivery_id: int) -> bool:
    """Claim and process one delivery; True when it is done (now or already)."""
    pool = runtime.pool
    async with pool.acquire() as conn:
        claim = await conn.fetchrow(
            """UPDATE webhook_deliveries SET status = 'processing', attempts = attempts + 1,
                   locked_until = now() + make_interval(secs => $2)
               WHERE id = $1 AND next_attempt_at <= now()
                 AND (status = 'pending' OR (status = 'processing' AND locked_until < now()))
               RETURNING yclients_salon_id, event, install_generation, attempts""", delivery_id, float(LEASE_S))
    if claim is None:
        return False
    salon = claim["yclients_salon_id"]
    try:
        async with pool.acquire() as conn, conn.transaction():
            if claim["event"] == "uninstall":
                salon_id = await conn.fetchval(
                    """UPDATE salons SET integration_status = 'uninstalled', api_key_hash = NULL,
                               api_key_prefix = NULL, gateway_cleanup_pending_since = now(), updated_at = now()
                           WHERE yclients_salon_id = $1 RETURNING id""", salon)
                name = "uninstalled"
            else:
                # Frozen keeps the WhatsApp link and the key: a later activation brings it back.
                salon_id = await conn.fetchval(
                    "UPDATE salons SET integration_status = 'frozen', updated_at = now()"
                    " WHERE yclients_salon_id = $1 RETURNING id", salon)
                name = "frozen"
            if salon_id is not None:
                await events.record(conn, salon_id, name, {"install_generation": claim["install_generation"]})
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'done', processed_at = now(), locked_until = NULL,"
                " last_error = $2 WHERE id = $1", delivery_id, None if salon_id else "unknown salon")
    except Exception as exc:
        error = summarize_error(exc)
        log.warning("webhook processing failed", extra={"delivery_id": delivery_id, "error": error,
                                                          "attempts": claim["attempts"]})
        async with pool.acquire() as conn:
            await conn.execute(
                """UPDATE webhook_deliveries SET status = 'pending', locked_until = NULL, last_error = $2,
                       next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1""",
                delivery_id, error, retry_delay_s(claim["attempts"]))
        return False
    if claim["event"] == "uninstall" and salon_id is not None:
        await clean_up_gateway(runtime, salon)
    return True


async def clean_up_gateway(runtime: Runtime, yclients_salon_id: int) -> bool:
    """Log out and delete an uninstalled salon's WhatsApp session; True when done."""
    async with runtime.pool.acquire() as conn:
        still_uninstalled = await conn.fetchval(
            "SELECT integration_status = 'uninstalled' FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    if not still_uninstalled:
        return False  # reinstalled meanwhile: its session belongs to the new onboarding
    name = session_name(yclients_salon_id)

    async def logout_and_delete():
        await runtime.gateway.logout(name)  # a missing session ends the call: nothing to delete
        await runtime.gateway.delete(name)

    error = await gateway_call(runtime, logout_and_delete())
    if error is not None:
        log.info("gateway cleanup deferred", extra={"salon_id": yclients_salon_id, "error": error})
        return False
    async with runtime.pool.acquire() as conn, conn.transaction():
        salon_id = await conn.fetchval(
            "UPDATE salons SET gateway_cleanup_pending_since = NULL WHERE yclients_salon_id = $1"
            " AND integration_status = 'uninstalled' RETURNING id", yclients_salon_id)
        if salon_id is not None:
            await conn.execute(
                "UPDATE whatsapp_links SET status = 'idle', qr = NULL, qr_expires_at = NULL, phone = NULL,"
                " pairing_code = NULL, pairing_expires_at = NULL, updated_at = now() WHERE salon_id = $1", salon_id)
            await events.record(conn, salon_id, "whatsapp_session_deleted", {})
    return True


async def tick(runtime: Runtime) -> None:
    """One round: due deliveries, pending cleanups, expired keys."""
    async with runtime.pool.acquire() as conn:
        due = await conn.fetch(
            "SELECT id FROM webhook_deliveries WHERE status IN ('pending', 'processing') AND next_attempt_at <= now()"
            " AND (locked_until IS NULL OR locked_until < now()) ORDER BY id LIMIT 50")
        cleanups = await conn.fetch(
            "SELECT yclients_salon_id FROM salons WHERE gateway_cleanup_pending_since IS NOT NULL"
            " AND integration_status = 'uninstalled' ORDER BY gateway_cleanup_pending_since LIMIT 20")
        purged = await conn.execute(
            "DELETE FROM webhook_deliveries WHERE expires_at < now() AND status IN ('done', 'ignored')")
    for row in due:
        await process(runtime, row["id"])
    for row in cleanups:
        await clean_up_gateway(runtime, row["yclients_salon_id"])
    if purged != "DELETE 0":
        log.info("expired webhook keys purged", extra={"result": purged})


async def run_forever(runtime: Runtime, interval_s: float) -> None:
    while True:
        try:
            await tick(runtime)
        except Exception as exc:
            log.warning("webhook worker round failed", extra={"error": summarize_error(exc)})
        await asyncio.sleep(interval_s)
