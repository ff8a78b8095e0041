"""What support staff can fix: disconnect a salon's WhatsApp, restart its session, mark a
failed activation for retry, and steer the QR circuit breaker. Every action is audited
(who, what, target, result), also when it fails.

An action's database writes (link state, the salon's event, the audit entry) commit
together or not at all. The gateway call comes first and outside the transaction: it can
take the whole gateway timeout, and a transaction held open across it would pin a pool
connection and lock the link row the owner's page is polling. If the writes then fail,
nothing is recorded and the action can simply be repeated: a logout or restart of a
session the gateway already handled is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from portal.platform.database import Connection
from portal.salons import event_store as events
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.support import audit_store as audit
from portal.support import personal_data
from portal.support.deps import ActionDeps
from portal.web.i18n import translator
from portal.whatsapp import store as links
from portal.whatsapp.link import LinkState, LinkStatus, session_name
from portal.whatsapp.service import gateway_call

log = logging.getLogger(__name__)


MAX_REASON_CHARS = 500


def clean_reason(raw: object) -> str | None:
    """A staff reason as stored, or None when it is not one: text of 1-500 characters after
    trimming, no control characters but line breaks and tabs, nothing PostgreSQL text cannot
    hold (NUL, lone surrogates). Checked before any action is taken."""
    if not isinstance(raw, str):
        return None
    reason = raw.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        return None
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in reason):
        return None
    return reason


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str  # a sentence for staff, in English: the admin API's answer
    # The same sentence as i18n keys and values, so the dashboard says it in the staff's language.
    parts: tuple[tuple[str, dict[str, object]], ...] = field(default=())

    def said_in(self, t: Callable[..., str]) -> str:
        return " ".join(t(key, **values) for key, values in self.parts) if self.parts else self.message


def _result(ok: bool, *parts: tuple[str, dict[str, object]]) -> ActionResult:
    english = translator("en")
    return ActionResult(ok, " ".join(english(key, **values) for key, values in parts), parts)


async def _salon_pk(runtime: ActionDeps, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    async with runtime.pool.acquire() as conn:
        salon = await salons.by_yclients_id(conn, yclients_salon_id)
    return salon.pk if salon else None


def _target(yclients_salon_id: YclientsSalonId) -> str:
    return f"salon:{yclients_salon_id}"


@asynccontextmanager
async def _all_or_nothing(runtime: ActionDeps, actor: str, action: str, target: str) -> AsyncIterator[Connection]:
    """A transaction for one action's writes, its audit entry included. When it rolls back,
    a separate entry says so if the database still takes one, and the error goes on."""
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            yield conn
    except Exception as exc:
        try:
            await audit.record_alone(runtime.pool, actor, action, target, f"error: database: {type(exc).__name__}")
        except Exception:
            log.exception("staff action failed and its failure could not be audited",
                          extra={"action": action, "target": target})
        raise


async def disconnect(runtime: ActionDeps, actor: str, yclients_salon_id: YclientsSalonId,
                     reason: str) -> ActionResult | None:
    if clean_reason(reason) != reason:  # validate first: nothing is done for a bad reason
        raise ValueError("the reason must be clean_reason() text")
    salon_pk = await _salon_pk(runtime, yclients_salon_id)
    if salon_pk is None:
        return None
    error = await gateway_call(runtime, runtime.gateway.logout(session_name(yclients_salon_id)))
    # Marked logged out even when the gateway refused: staff asked for the salon to be
    # disconnected, and the owner must link again either way.
    result = "ok" if error is None else f"error: gateway: {error}"
    target = _target(yclients_salon_id)
    async with _all_or_nothing(runtime, actor, "disconnect", target) as conn:
        await links.get_or_create(conn, salon_pk, yclients_salon_id)
        await links.save_state(conn, salon_pk, LinkState(LinkStatus.LOGGED_OUT), error=error)
        await events.record(conn, salon_pk, "whatsapp_disconnected",
                            {"by": actor, "reason": reason, "gateway_error": error})
        await audit.record(conn, actor, "disconnect", target, result, {"reason": reason})
    if error:
        return _result(False, ("admin.result.disconnect_refused", {"error": error}))
    return _result(True, ("admin.result.disconnected", {}))


async def restart_session(runtime: ActionDeps, actor: str, yclients_salon_id: YclientsSalonId) -> ActionResult | None:
    salon_pk = await _salon_pk(runtime, yclients_salon_id)
    if salon_pk is None:
        return None
    error = await gateway_call(runtime, runtime.gateway.restart(session_name(yclients_salon_id)))
    target = _target(yclients_salon_id)
    if error is not None:  # nothing changed: only the refusal is recorded
        await audit.record_alone(runtime.pool, actor, "restart_session", target, f"error: gateway: {error}")
        return _result(False, ("admin.result.gateway_refused", {"error": error}))
    async with _all_or_nothing(runtime, actor, "restart_session", target) as conn:
        await links.get_or_create(conn, salon_pk, yclients_salon_id)
        await links.save_state(conn, salon_pk, LinkState(LinkStatus.STARTING))
        await events.record(conn, salon_pk, "whatsapp_restarted", {"by": actor})
        await audit.record(conn, actor, "restart_session", target, "ok")
    return _result(True, ("admin.result.restarted", {}))


async def mark_for_retry(runtime: ActionDeps, actor: str, yclients_salon_id: YclientsSalonId) -> ActionResult | None:
    salon_pk = await _salon_pk(runtime, yclients_salon_id)
    if salon_pk is None:
        return None
    target = _target(yclients_salon_id)
    async with _all_or_nothing(runtime, actor, "mark_for_retry", target) as conn:
        changed = await salons.mark_for_retry(conn, salon_pk)
        if changed:
            await events.record(conn, salon_pk, "activation_retry_marked", {"by": actor})
        await audit.record(conn, actor, "mark_for_retry", target,
                           "ok" if changed else "refused: activation has not failed")
    if not changed:
        return _result(False, ("admin.result.retry_refused", {}))
    return _result(True, ("admin.result.retry_marked", {}))


async def erase_personal_data(runtime: ActionDeps, actor: str,
                              yclients_salon_id: YclientsSalonId) -> ActionResult | None:
    """At once, on a person's request: the owner's name, phone and e-mail and the WhatsApp
    number are blanked; the event and the audit entry say so, without the values.

    A number still linked at the gateway would be read back by the next look at the session
    (a poll, an event), so a working link is logged out first and stored as logged out: the
    owner links again to use the assistant. When the gateway refuses the logout, nothing is
    erased (an erasure that undoes itself is worse than none) and staff are told to retry."""
    salon_pk = await _salon_pk(runtime, yclients_salon_id)
    if salon_pk is None:
        return None
    target = _target(yclients_salon_id)
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon_pk, yclients_salon_id)
    linked = link.status in (LinkStatus.CONNECTED, LinkStatus.LINKING)
    if linked and (error := await gateway_call(runtime, runtime.gateway.logout(link.session_name))) is not None:
        await audit.record_alone(runtime.pool, actor, "erase_personal_data", target, f"error: gateway: {error}")
        return _result(False, ("admin.result.erase_refused", {"error": error}))
    async with _all_or_nothing(runtime, actor, "erase_personal_data", target) as conn:
        if linked:
            await links.save_state(conn, salon_pk, LinkState(LinkStatus.LOGGED_OUT))
        await personal_data.erase(conn, salon_pk)
        await events.record(conn, salon_pk, "personal_data_erased",
                            {"why": "staff", "by": actor, "whatsapp": "logged_out" if linked else "not_linked"})
        await audit.record(conn, actor, "erase_personal_data", target, "ok", {"whatsapp_logged_out": linked})
    if linked:
        return _result(True, ("admin.result.erased", {}), ("admin.result.erased_logged_out", {}))
    return _result(True, ("admin.result.erased", {}), ("admin.result.erased_not_linked", {}))


def yclients_user_id(raw: object) -> int | None:
    """A YClients user id typed by staff: ASCII digits, a positive integer, else None."""
    if not isinstance(raw, str) or not raw.strip().isascii() or not raw.strip().isdigit():
        return None
    number = int(raw.strip())
    return number if 0 < number <= 2**62 else None


async def hand_over(runtime: ActionDeps, actor: str, yclients_salon_id: YclientsSalonId, new_owner_user_id: int,
                    reason: str) -> ActionResult | None:
    """The salon's installer left: from now on only `new_owner_user_id` may open it from the
    marketplace (the previous owner user's credentials stop opening it). Audited."""
    salon_pk = await _salon_pk(runtime, yclients_salon_id)
    if salon_pk is None:
        return None
    target = _target(yclients_salon_id)
    async with _all_or_nothing(runtime, actor, "hand_over", target) as conn:
        previous = await salons.hand_over(conn, salon_pk, new_owner_user_id)
        details = {"from_user_id": previous, "to_user_id": new_owner_user_id, "reason": reason}
        await events.record(conn, salon_pk, "owner_handed_over", {"by": actor, **details})
        await audit.record(conn, actor, "hand_over", target, "ok", details)
    return _result(True, ("admin.result.handed_over", {"user": new_owner_user_id}))


async def steer_breaker(runtime: ActionDeps, actor: str, action: str) -> ActionResult:
    """Reset / force open the one breaker every instance shares, then wait (at most a second)
    until the running instances say they applied it: the message says how many did."""
    breaker = runtime.breaker
    if action == "reset":
        version = await breaker.reset()
    elif action == "force_open":
        version = await breaker.force_open()
    else:
        raise ValueError(action)
    seen, running = await breaker.wait_seen(version)
    log.warning("QR breaker changed by staff",
                extra={"action": action, "actor": actor, "version": version, "seen": seen, "running": running})
    await audit.record_alone(runtime.pool, actor, "breaker_reset" if action == "reset" else "breaker_force_open",
                             "breaker:qrGeneration", "ok",
                             {"state_after": breaker.stats()["state"], "version": version,
                              "seen_by": seen, "instances_running": running})
    done = "admin.result.breaker_reset" if action == "reset" else "admin.result.breaker_forced_open"
    return _result(True, (done, {}), ("admin.result.seen_one" if running == 1 else "admin.result.seen",
                                      {"seen": seen, "running": running}))
