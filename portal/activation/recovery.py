"""Recovering an install YClients holds while our records lost it, from documented facts only.

Activation reads YClients' install status before its callback; an `active` one comes here
(`complete_ours` or `foreign_install`), never to a second callback. YClients answers a
second install of one salon with "already installed" (422), and its install
status (`GET /salon/{id}/application/{app}`) says only `data.connection_status.status`
(`active`, `pending`, `freezed`), its log and payments: no API key, nothing that says *who*
installed. So whether an install is ours comes from our own record, the activation intent
(see `intent_store`): YClients reports the install `active` and we hold an unfinished intent
for the salon (an earlier attempt whose outcome we never learned) → it is ours, completed with
that intent's generation and key. YClients reports an install we never attempted → it is
someone else's: the owner is told so and staff see an alert.

`reconcile` is the worker's round over intents left unfinished (a crash, a timeout, a lost
answer): it asks YClients and completes the install or releases the intent.
"""

from __future__ import annotations

import logging

from portal.activation import intent_store as intents
from portal.activation import store
from portal.activation.deps import ActivationDeps
from portal.activation.intent_store import Intent
from portal.activation.partner import PartnerError
from portal.platform.database import Connection
from portal.platform.error_reporting import report_message
from portal.salons import event_store as events
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus

log = logging.getLogger(__name__)

# A salon whose activation has not ended: a foreign install YClients calls active completes it.
_UNFINISHED = (IntegrationStatus.PENDING_WHATSAPP, IntegrationStatus.ACTIVATING, IntegrationStatus.ACTIVATION_FAILED)

# Partner failures after which YClients may hold the install all the same (the answer was
# lost or unreadable): the intent stays unfinished for the reconciler.
UNKNOWN_OUTCOME = frozenset({"timeout", "unreachable", "server", "bad_response"})
# An unfinished intent younger than this may belong to an activation still running (the
# legacy path holds no lock): the reconciler leaves it alone.
RECONCILE_GRACE_MARGIN_S = 15.0
FOREIGN_ERROR = "YClients reports an install this portal never made"


class ForeignInstall(PartnerError):
    """YClients reports the app installed in the salon, and we never attempted that install."""

    def __init__(self, status: str) -> None:
        super().__init__("already_installed", status=422, message=None)
        self.install_status = status


async def after_already_installed(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId,
                                  attempted_before: bool) -> bool:
    """YClients refused the install as "already installed": True when it is ours (complete it);
    raises ForeignInstall when it is someone else's; False when it cannot be told now."""
    try:
        status = await runtime.partner.install_status(yclients_salon_id, runtime.settings.app_id)
    except PartnerError:
        return False  # the original "already installed" stands; the intent tells the next try
    if status is None:
        return False  # "already installed" yet no install: nothing to decide on
    if not attempted_before:
        raise foreign_install(yclients_salon_id, status)
    return status == "active"


def foreign_install(yclients_salon_id: YclientsSalonId, status: str) -> ForeignInstall:
    """YClients reports an install we never attempted: logged, reported to staff, returned."""
    log.warning("install reported that this portal never attempted", extra={
        "yclients_salon_id": yclients_salon_id, "install_status": status})
    report_message("foreign install reported by YClients", salon_id=str(yclients_salon_id))
    return ForeignInstall(status)


async def complete_ours(db: Connection, salon_pk: SalonPk, generation: int, key_hash: str) -> None:
    """YClients reports `active` and our intent for it is unfinished: the install is ours.
    Written in the caller's transaction (under the salon's activation lock)."""
    await salons.complete_install(db, salon_pk, generation, key_hash)
    await intents.finish(db, salon_pk, generation, "active")


def failure_outcome(exc: PartnerError, attempted_before: bool) -> str | None:
    """How the intent closes after a partner failure; None leaves it unfinished."""
    if isinstance(exc, ForeignInstall):
        return "foreign"
    if exc.kind in UNKNOWN_OUTCOME or attempted_before:
        # This call's answer is lost, or an earlier attempt's outcome is still unknown.
        return None
    return "failed"  # YClients refused this install, and no earlier one is pending


async def reconcile(runtime: ActivationDeps) -> int:
    """One round over unfinished intents; how many it closed."""
    settings = runtime.settings
    grace = settings.yclients_timeout_s * settings.activation_attempts + RECONCILE_GRACE_MARGIN_S
    closed = 0
    for intent in await intents.unfinished(runtime.pool, older_than_s=grace):
        try:
            closed += await _reconcile_one(runtime, intent)
        except Exception as exc:  # one salon's trouble must not stop the round
            log.warning("activation reconcile failed", extra={
                "yclients_salon_id": intent.yclients_salon_id, "error": type(exc).__name__})
    return closed


async def _reconcile_one(runtime: ActivationDeps, intent: Intent) -> bool:
    """Under the salon's activation lock: ask YClients, then complete, release or wait."""
    settings = runtime.settings
    async with runtime.pool.acquire() as conn, conn.transaction():
        await store.limit_idle_in_transaction(conn, int((settings.yclients_timeout_s + 15) * 1000))
        if not await store.try_lock(conn, intent.yclients_salon_id):
            return False  # an activation of this salon is running: it will finish the intent
        if not await intents.still_open(conn, intent.salon_pk, intent.install_generation):
            return False
        state = await salons.locked_state(conn, intent.salon_pk)
        if state is None:
            await intents.finish(conn, intent.salon_pk, intent.install_generation, "released", "salon gone")
            return True
        if state[0] == IntegrationStatus.ACTIVE and state[1] >= intent.install_generation:
            await intents.finish(conn, intent.salon_pk, intent.install_generation, "active")
            return True  # the commit happened; only closing the intent was lost
        try:
            status = await runtime.partner.install_status(intent.yclients_salon_id, settings.app_id)
        except PartnerError as exc:
            await intents.note_error(conn, intent.salon_pk, intent.install_generation, exc.safe_summary)
            return False
        return await _settle(conn, intent, status, IntegrationStatus(state[0]))


async def _settle(db: Connection, intent: Intent, status: str | None, salon_status: IntegrationStatus) -> bool:
    """What YClients' install status means for an unfinished intent, written in the caller's
    transaction. A `freezed` install stays open (listed for staff): not ours to decide."""
    pk, generation = intent.salon_pk, intent.install_generation
    if status is None or status == "pending":
        # No install, or one still waiting for a callback: ours never got through. The owner
        # may press again (a pending install gets the callback then).
        reason = "YClients reports no install" if status is None else "YClients still waits for the callback"
        await intents.finish(db, pk, generation, "released", reason)
        await salons.release_activating(db, pk)
        await events.record(db, pk, "activation_released", {"install_generation": generation})
        log.info("unfinished activation released", extra={"yclients_salon_id": intent.yclients_salon_id})
        return True
    if status != "active" or salon_status not in _UNFINISHED:
        await intents.note_error(db, pk, generation, f"YClients reports the install {status}")
        return False
    await salons.complete_install(db, pk, generation, intent.api_key_hash)
    await intents.finish(db, pk, generation, "active")
    await events.record(db, pk, "integration_activated", {
        "activation_mode": "reconciled", "install_generation": generation})
    log.info("unfinished activation completed", extra={"yclients_salon_id": intent.yclients_salon_id})
    return True
