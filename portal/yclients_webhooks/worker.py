"""Processing stored YClients deliveries (uninstall, freeze, payment), and the worker that
finishes what is left.

A delivery is processed right after it is stored (in the request), and by the worker for
anything still pending: failures (retried with backoff), deliveries whose processing died
with the process (a claim has a lease, `locked_until`), and gateway cleanups of uninstalled
salons that the gateway refused. The worker also purges idempotency keys past their TTL.
Several instances can run it at once: claims are single-row atomic UPDATEs.

A failure is retried with backoff up to MAX_DELIVERY_ATTEMPTS, then the delivery is `failed`
(shown on the dashboard). Its traceback is logged once, at the first failure; later ones
are one line each, so a recurring error does not flood the log.

On shutdown (`stopping` set) the worker finishes the delivery in hand and takes no other.
A delivery cancelled all the same (the shutdown's bound ran out) gives its lease back, so
the next instance takes it at once instead of after LEASE_S; one cut short by SIGKILL
keeps its lease until it runs out, its transaction rolled back, and is then done once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from portal.platform.database import Connection
from portal.salons import event_store as events
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.whatsapp import store as links
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.deps import GatewayDeps
from portal.whatsapp.link import session_name
from portal.whatsapp.service import gateway_call
from portal.yclients_webhooks import store
from portal.yclients_webhooks.store import MAX_DELIVERY_ATTEMPTS, Claim

log = logging.getLogger(__name__)
# The composition root's container: the worker's own rounds need a gateway and the pool; the
# rounds handed in may need more of the same container.
D = TypeVar("D", bound=GatewayDeps)
LEASE_S = 60
# How long a shutdown waits for the delivery in hand: its writes and one gateway call.
STOP_WAIT_S = 15.0

Applied = tuple[SalonPk, str] | None  # the salon written, and the audit event it records

# The trail's event for each change, in one table (staff read each in words: tests/house/test_i18n.py
# finds them here).
_TRAIL = {"uninstall": "uninstalled", "freeze": "frozen", "unfreeze": "unfrozen", "renewal": "payment_received"}


async def _uninstall(conn: Connection, yclients_salon_id: YclientsSalonId) -> Applied:
    salon_pk = await salons.mark_uninstalled(conn, yclients_salon_id)
    return None if salon_pk is None else (salon_pk, _TRAIL["uninstall"])


async def _freeze(conn: Connection, yclients_salon_id: YclientsSalonId) -> Applied:
    salon_pk = await salons.mark_frozen(conn, yclients_salon_id)
    return None if salon_pk is None else (salon_pk, _TRAIL["freeze"])


async def _payment(conn: Connection, yclients_salon_id: YclientsSalonId) -> Applied:
    # The platform's `freezed → active` on a successful payment; a renewal of an active
    # install changes nothing but is on the timeline too.
    paid = await salons.mark_paid(conn, yclients_salon_id)
    return None if paid is None else (paid[0], _TRAIL["unfreeze"] if paid[1] else _TRAIL["renewal"])


# What each event does to the salon: its status write, and the audit event it records.
_EVENTS: dict[str, Callable[[Connection, YclientsSalonId], Awaitable[Applied]]] = {
    "uninstall": _uninstall, "freeze": _freeze, "payment": _payment,
}


def retry_delay_s(attempts: int) -> float:
    return min(2.0 ** attempts, 300.0)


async def process(runtime: GatewayDeps, delivery_id: int) -> bool:
    """Claim and process one delivery; True when it is done (now or already)."""
    claim = await store.claim(runtime.pool, delivery_id, LEASE_S)
    if claim is None:
        return False
    if claim.attempts > MAX_DELIVERY_ATTEMPTS:
        # Its earlier claimers died mid-processing (leases ran out) until the bound was used up.
        await _give_up(runtime, claim, "processing never finished")
        return False
    try:
        salon_pk = await _apply(runtime, claim)
    except asyncio.CancelledError:
        # Its transaction rolled back: hand the delivery back rather than hold it for LEASE_S.
        await asyncio.shield(store.release(runtime.pool, delivery_id))
        raise
    except Exception as exc:
        await _failed_attempt(runtime, claim, exc)
        return False
    if claim.event == "uninstall" and salon_pk is not None:
        await clean_up_gateway(runtime, claim.yclients_salon_id)
    return True


async def _apply(runtime: GatewayDeps, claim: Claim) -> SalonPk | None:
    """The event's salon write, its audit event and `done`, in one transaction."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        applied = await _EVENTS[claim.event](conn, claim.yclients_salon_id)
        if applied is not None:
            payload: dict[str, object] = {"install_generation": claim.install_generation}
            if claim.data:
                payload["payment"] = claim.data  # the payment and period data YClients sent
            await events.record(conn, applied[0], applied[1], payload)
        await store.mark_done(conn, claim.delivery_id, None if applied is not None else "unknown salon")
    return None if applied is None else applied[0]


async def _failed_attempt(runtime: GatewayDeps, claim: Claim, exc: Exception) -> None:
    error = summarize_error(exc)
    extra = {"delivery_id": claim.delivery_id, "error": error, "attempts": claim.attempts}
    if claim.attempts == 1:
        # The first failure carries the traceback: the one place a programming error shows where.
        log.warning("webhook processing failed", extra=extra, exc_info=exc)
    else:
        log.warning("webhook processing failed again", extra=extra)
    if claim.attempts >= MAX_DELIVERY_ATTEMPTS:
        await _give_up(runtime, claim, error)
    else:
        await store.retry_later(runtime.pool, claim.delivery_id, error, retry_delay_s(claim.attempts))


async def _give_up(runtime: GatewayDeps, claim: Claim, error: str) -> None:
    log.error("webhook delivery failed for good", extra={
        "delivery_id": claim.delivery_id, "yclients_salon_id": claim.yclients_salon_id, "event": claim.event,
        "attempts": claim.attempts, "error": error})
    await store.mark_failed(runtime.pool, claim.delivery_id, error)


async def clean_up_gateway(runtime: GatewayDeps, yclients_salon_id: YclientsSalonId) -> bool:
    """Log out and delete an uninstalled salon's WhatsApp session; True when done."""
    async with runtime.pool.acquire() as conn:
        uninstalled = await salons.still_uninstalled(conn, yclients_salon_id)
    if not uninstalled:
        return False  # reinstalled meanwhile: its session belongs to the new onboarding
    name = session_name(yclients_salon_id)

    async def logout_and_delete() -> None:
        await runtime.gateway.logout(name)  # a missing session ends the call: nothing to delete
        await runtime.gateway.delete(name)

    error = await gateway_call(runtime, logout_and_delete())
    if error is not None:
        log.info("gateway cleanup deferred", extra={"yclients_salon_id": yclients_salon_id, "error": error})
        return False
    async with runtime.pool.acquire() as conn, conn.transaction():
        salon_pk = await salons.finish_cleanup(conn, yclients_salon_id)
        if salon_pk is not None:  # its link starts over
            await links.reset(conn, salon_pk)
            await events.record(conn, salon_pk, "whatsapp_session_deleted", {})
    return True


async def tick(runtime: GatewayDeps, stopping: asyncio.Event | None = None) -> None:
    """One round: due deliveries, pending cleanups, expired keys; nothing new once `stopping`."""
    work = await store.backlog(runtime.pool)
    for delivery_id in work.due:
        if stopping is not None and stopping.is_set():
            return
        await process(runtime, delivery_id)
    for yclients_salon_id in work.cleanups:
        if stopping is not None and stopping.is_set():
            return
        await clean_up_gateway(runtime, yclients_salon_id)
    if work.purged != "DELETE 0":
        log.info("expired webhook keys purged", extra={"result": work.purged})


async def run_forever(runtime: D, interval_s: float, stopping: asyncio.Event | None = None,
                      rounds: Sequence[Callable[[D], Awaitable[object]]] = ()) -> None:
    """Rounds every `interval_s` until `stopping` is set (then it returns after the delivery in hand).

    `rounds`: other housekeeping handed in by the composition root (the activation's
    reconcile of unfinished intents, the personal data retention), run after the
    deliveries; one failing round never stops the others."""
    stopping = stopping or asyncio.Event()
    while not stopping.is_set():
        try:
            await tick(runtime, stopping)
        except Exception as exc:
            log.warning("webhook worker round failed", extra={"error": summarize_error(exc)})
        for extra_round in rounds:
            if stopping.is_set():
                break
            try:
                await extra_round(runtime)
            except Exception as exc:
                log.warning("worker round failed", extra={"round": getattr(extra_round, "__name__", "?"),
                                                          "error": summarize_error(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)


async def stop(worker: asyncio.Task[None], stopping: asyncio.Event) -> None:
    """Let the worker finish the delivery in hand (up to STOP_WAIT_S), then cancel it."""
    stopping.set()
    done, _ = await asyncio.wait({worker}, timeout=STOP_WAIT_S)
    if not done:
        log.warning("webhook worker did not stop in time: cancelled", extra={"wait_s": STOP_WAIT_S})
        worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
