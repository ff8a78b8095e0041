"""A gateway's status events, taken as hints: authenticated by the adapter, de-duplicated
by their id here, confirmed by one look at the gateway, then stored like any poll's answer.

An event is evidence, not truth: a leaked or replayed webhook must not connect a salon to a
number of someone's choosing. So the event only says *when* to look; what is stored is what
one `GET` of the session at the gateway says now (status, phone number, the QR when it shows
one), never the event's own status or `me`. An event already taken (its id remembered for
`EVENT_MEMORY_S`) costs no gateway call; one older than that memory is refused by its own
timestamp, so a replay cannot outlive its id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from enum import StrEnum

from portal.whatsapp import gateway_event_store as seen_events
from portal.whatsapp import store as links
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.deps import WhatsAppDeps
from portal.whatsapp.link import GatewayError, StatusUpdate
from portal.whatsapp.service import _as_seen, _store

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"  # no salon has that session
    DUPLICATE = "duplicate"  # this event was already taken
    STALE = "stale"  # older than the memory of ids: possibly a replay, refused


class GatewayUnconfirmed(Exception):
    """The gateway could not be asked to confirm an event: nothing was changed."""


async def apply_update(runtime: WhatsAppDeps, update: StatusUpdate, *, now: float | None = None) -> Outcome:
    """Take one authenticated status event (`now`: Unix seconds, for tests)."""
    now = time.time() if now is None else now
    if update.sent_at is not None and update.sent_at < now - seen_events.EVENT_MEMORY_S:
        return Outcome.STALE
    async with runtime.pool.acquire() as conn:
        if update.event_id is not None and await seen_events.seen(conn, update.event_id):
            return Outcome.DUPLICATE
        found = await links.session_link(conn, update.session)
    if found is None:
        return Outcome.IGNORED
    salon_pk, known = found
    try:
        async with asyncio.timeout(runtime.settings.waha_timeout_s):
            state = await runtime.gateway.get_state(update.session)
    except (GatewayError, TimeoutError) as exc:
        # The sender retries a failed delivery (not remembered: the retry must get through);
        # until then the safety poll covers it.
        raise GatewayUnconfirmed(summarize_error(exc)) from exc
    if state.status is not update.status:
        log.info("gateway event not confirmed by the gateway",
                 extra={"event_status": update.status.value, "gateway_status": state.status.value})
    await _store(runtime, salon_pk, _as_seen(known, state))
    if update.event_id is not None:
        async with runtime.pool.acquire() as conn:
            await seen_events.remember(conn, update.event_id)
    return Outcome.PROCESSED
