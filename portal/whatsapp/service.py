"""Linking a salon's WhatsApp: start the session, show its QR or pairing code, follow it to
connected. The one place that combines the gateway, the breaker and the link rows.

- `start` goes through the circuit breaker ("start the session and wait for its first QR")
  unless a live QR is already known (the fast path: no gateway call at all).
- `current` answers polls from the database; with the gateway's events on it never waits for
  the gateway (the events and the safety sweep, `sweep.py`, do that; QRs renew in the background).
- `confirm_passkey` is the owner's "the codes match" in the passkey step.
- `disconnect` is the owner's own "unlink this number" (the relink starts with it).

A connected link of an active salon that stops being connected is "lost" (the phone unlinked
the device, the session failed, the owner disconnected); reaching connected again is a
"relink". Both go to the salon's event trail with the masked numbers, whichever path stored
them, since they all pass `_store`. The integration with YClients is not touched by either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

from portal.platform.database import Connection
from portal.platform.settings import Settings
from portal.salons import event_store as events
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.whatsapp import store as links
from portal.whatsapp.breaker import CircuitOpen, summarize_error
from portal.whatsapp.deps import GatewayDeps, WhatsAppDeps
from portal.whatsapp.link import GatewayConflict, GatewayError, LinkState, LinkStatus, SessionNotFound
from portal.whatsapp.link_view import LinkView, Poll
from portal.whatsapp.phones import mask_phone
from portal.whatsapp.store import Link

log = logging.getLogger(__name__)

# Events for the funnel and the timeline, by the status a link moves into.
_STATUS_EVENTS = {
    LinkStatus.AWAITING_SCAN: "qr_shown",
    LinkStatus.PASSKEY: "passkey_asked",
    LinkStatus.CONNECTED: "whatsapp_connected",
    LinkStatus.EXPIRED: "qr_expired",
    LinkStatus.FAILED: "whatsapp_failed",
    LinkStatus.LOGGED_OUT: "whatsapp_logged_out",
}
PAIRING_CODE_LIFETIME_S = 180.0


# What a gateway may report for a session that was connected and was not asked to start
# again: the account is gone from it. WAHA has no "logged out" status (a session the phone
# unlinked shows as stopped, failed without an account, or back to scanning), so the portal,
# knowing the number was connected, says so itself.
_GONE_AFTER_CONNECTED = frozenset({LinkStatus.IDLE, LinkStatus.STARTING, LinkStatus.AWAITING_SCAN,
                                   LinkStatus.EXPIRED})


def _as_seen(known: LinkStatus, state: LinkState) -> LinkState:
    if known is LinkStatus.CONNECTED and state.status in _GONE_AFTER_CONNECTED:
        return LinkState(LinkStatus.LOGGED_OUT)
    return state


async def _store(runtime: WhatsAppDeps, salon_pk: SalonPk, state: LinkState, *, error: str | None = None,
                 cause: str | None = None) -> Link:
    if state.qr is not None:
        await runtime.qr_images.prepare(state.qr)  # drawn off the event loop, before anyone shows it
    async with runtime.pool.acquire() as conn:
        saved = await links.save_state(conn, salon_pk, state, error=error)
    previous = saved.previous
    if previous is not state.status and state.status in _STATUS_EVENTS:
        payload = {"from": previous.value}
        if error:
            payload["error"] = error
        await events.record_quietly(runtime.pool, salon_pk, _STATUS_EVENTS[state.status], payload)
    if saved.integration_status == IntegrationStatus.ACTIVE:
        await _record_loss_or_relink(runtime, saved, cause)
    return saved.link


async def _record_loss_or_relink(runtime: WhatsAppDeps, saved: links.Saved, cause: str | None) -> None:
    """The trail of an active salon's number: lost when its link leaves connected, relinked
    when it reaches connected again (with the number it replaced: it may be another one)."""
    was_connected = saved.previous is LinkStatus.CONNECTED
    now_connected = saved.link.status is LinkStatus.CONNECTED
    if was_connected and not now_connected:
        payload = {"phone": mask_phone(saved.link.connected_phone), "status": saved.link.status.value}
        if cause:
            payload["cause"] = cause
        await events.record_quietly(runtime.pool, saved.link.salon_pk, "whatsapp_lost", payload)
    elif now_connected and not was_connected:
        phone, before = saved.link.connected_phone, saved.previous_phone
        await events.record_quietly(runtime.pool, saved.link.salon_pk, "whatsapp_relinked", {
            "phone": mask_phone(phone), "previous_phone": mask_phone(before),
            "same_number": phone == before})


# A link that waits for nothing is read again at most this often per instance (its changes
# are announced anyway; this only bounds how long a lost announcement could go unseen).
SETTLED_RECHECK_S = 60.0


async def current(runtime: WhatsAppDeps, salon: Salon) -> Poll:
    """The poll of a salon its caller already holds (a page): the salon is not read again."""
    poll = await _current(runtime, salon)
    assert poll is not None  # a salon given has a poll, with its link or with none yet
    return poll


async def current_by_credential(runtime: WhatsAppDeps, yclients_salon_id: YclientsSalonId) -> Poll | None:
    """The poll of the salon a token names (the owner's polls, which hold nothing else): the
    salon and its link in the same one round trip. None: no such salon."""
    return await _current(runtime, yclients_salon_id)


async def _current(runtime: WhatsAppDeps, of: Salon | YclientsSalonId) -> Poll | None:
    """The poll: from this instance's memory while unchanged and not due, else the stored state.
    With events on it never waits for the gateway (events and the sweep keep the row current; a
    QR about to expire is renewed in the background); without, it refreshes when due."""
    yclients_salon_id = of.yclients_salon_id if isinstance(of, Salon) else of
    cached = runtime.link_versions.fresh(yclients_salon_id)
    if cached is not None:
        return cached
    settings = runtime.settings
    async with runtime.pool.acquire() as conn:
        read = await _read(conn, settings, of)
    if read is None:
        return None
    link = read.link
    if link is not None and runtime.breaker.state == "closed":
        if read.claimed:
            link = await _refresh(runtime, read.salon_pk, link)
        elif settings.gateway_events and _qr_expiring(link):  # fetched in the background
            runtime.qr_renewals.renew(read.salon_pk, lambda: _refresh(runtime, read.salon_pk, link))
    poll = Poll(LinkView.of(link), read.integration_status, read.owner_user_id)
    runtime.link_versions.remember(yclients_salon_id, read.salon_pk, link.version if link else 0, poll,
                                   _recheck_in(settings.link_recheck_s, poll.view, connected_recheck_s(settings)))
    return poll


async def _read(conn: Connection, settings: Settings, of: Salon | YclientsSalonId) -> links.PollRead | None:
    """With events on, a read; without, a read that may claim the right to ask the gateway.
    A salon given is not read again: its link is read alone."""
    refresh_s, connected_s = settings.link_recheck_s, connected_recheck_s(settings)
    if isinstance(of, Salon):
        return (await links.read_salon_link(conn, of) if settings.gateway_events else
                await links.read_salon_for_poll(conn, of, refresh_s, connected_s))
    return (await links.read_for_owner(conn, of) if settings.gateway_events else
            await links.read_for_poll(conn, of, refresh_s, connected_s))


def _qr_expiring(link: Link) -> bool:
    """A shown QR close to its end: the owner looking at it needs the next one soon."""
    left = (link.qr_expires_at - link.now).total_seconds() if link.qr_expires_at else None
    return link.status is LinkStatus.AWAITING_SCAN and left is not None and left <= links.QR_REFRESH_MARGIN_S


def connected_recheck_s(settings: Settings) -> float:
    """How often a connected link's page looks again (without events: at the gateway, as the
    phone may unlink the device), never more often than waiting links'."""
    return max(settings.link_recheck_s, settings.whatsapp_safety_poll_s)


def _recheck_in(recheck_s: float, view: LinkView, connected_s: float = SETTLED_RECHECK_S) -> float:
    if view.status is LinkStatus.CONNECTED:
        return connected_s
    if not view.waiting:
        return SETTLED_RECHECK_S
    if view.qr_expires_in is not None:
        return max(0.0, min(recheck_s, view.qr_expires_in - links.QR_REFRESH_MARGIN_S))
    return recheck_s


async def _refresh(runtime: WhatsAppDeps, salon_pk: SalonPk, link: Link) -> Link:
    """Ask the gateway where a waiting link stands; store it if it moved."""
    qr_left = (link.qr_expires_at - link.now).total_seconds() if link.qr_expires_at else None
    want_qr = link.qr is None or qr_left is None or qr_left <= links.QR_REFRESH_MARGIN_S
    try:
        async with asyncio.timeout(runtime.settings.waha_timeout_s):
            state = await runtime.gateway.refresh(link.session_name, known=link.status, want_qr=want_qr)
    except (GatewayError, TimeoutError) as exc:
        # Keep showing what we had: one failed read is no reason to flip the owner's page.
        log.info("gateway read failed", extra={"session": link.session_name, "error": summarize_error(exc)})
        return link
    if state.status is LinkStatus.AWAITING_SCAN and state.qr is None and link.status is LinkStatus.AWAITING_SCAN:
        state = LinkState(LinkStatus.AWAITING_SCAN, qr=link.qr, qr_expires_in=qr_left)  # keep the live QR
    state = _as_seen(link.status, state)
    renewed = want_qr and state.qr is not None and state.qr == link.qr  # the gateway still shows it
    # A phone not reported (Evolution reads the number once, when the link connects) is unchanged.
    same_phone = state.phone is None or state.phone == link.phone
    if (state.status is link.status and state.qr == link.qr and same_phone and not renewed
            and state.passkey_code == link.passkey_code):
        return link
    # A QR the gateway still serves gets a new lifetime (nothing the owner sees changes, so
    # no version moves): else it would count as expiring, and be fetched, on every poll.
    return await _store(runtime, salon_pk, state)


async def _start_and_wait_for_qr(runtime: WhatsAppDeps, name: str, metadata: dict[str, str], *,
                                 relink: bool = False) -> LinkState:
    """Start (or reuse) the session, then poll with backoff until it shows a QR. `relink`: the
    session had a number and lost it; a failed session of that kind comes back to a QR only
    after a logout (waha#223; waha-docs how-to/sessions: "Logout and Start")."""
    settings = runtime.settings
    if relink:
        with contextlib.suppress(SessionNotFound):
            await runtime.gateway.logout(name)
    state = await runtime.gateway.start_session(name, metadata=metadata)
    delay = settings.qr_wait_initial_s
    for _ in range(settings.qr_wait_attempts):
        if state.status in (LinkStatus.LINKING, LinkStatus.CONNECTED, LinkStatus.PASSKEY) or (
            state.status is LinkStatus.AWAITING_SCAN and state.qr
        ):
            return state
        if state.status in (LinkStatus.FAILED, LinkStatus.EXPIRED):
            raise GatewayError(f"session is {state.status} right after start")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, settings.qr_wait_max_s)
        state = await runtime.gateway.get_state(name)
    if state.status is LinkStatus.AWAITING_SCAN and state.qr:
        return state
    raise GatewayError("no QR code within the wait")


# Sessions waiting for a scan are live WhatsApp Web clients on the gateway host: beyond
# MAX_WAITING_SESSIONS of them (changed within WAITING_FRESH_S), a new start waits instead.
# The count and the start are not atomic: concurrent starts may pass the cap by a few.
WAITING_FRESH_S = 300.0
BUSY_RETRY_S = 30.0


async def _too_many_waiting(runtime: WhatsAppDeps, salon: Salon) -> bool:
    async with runtime.pool.acquire() as conn:
        waiting = await links.count_waiting(conn, salon.pk, WAITING_FRESH_S)
    if waiting < runtime.settings.max_waiting_sessions:
        return False
    log.warning("WhatsApp start deferred: too many sessions waiting for a scan",
                extra={"yclients_salon_id": salon.yclients_salon_id, "waiting": waiting})
    return True


# What `start` answers for a salon that no longer has the app: no gateway session is
# started for it (the uninstall's cleanup deleted it), whichever page or API asks.
APP_REMOVED = "whatsapp.app_removed"


async def start(runtime: WhatsAppDeps, salon: Salon) -> LinkView:
    """Make a QR appear: reuse a live one, else start the session through the breaker."""
    if salon.integration_status == IntegrationStatus.UNINSTALLED:
        return LinkView(LinkStatus.IDLE, problem=APP_REMOVED)
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon.pk, salon.yclients_salon_id)
    view = LinkView.of(link)
    if view.status is LinkStatus.AWAITING_SCAN and view.qr and (view.qr_expires_in or 0) > 1:
        return view  # the fast path: a QR the owner can still scan
    if view.status in (LinkStatus.LINKING, LinkStatus.CONNECTED, LinkStatus.PASSKEY):
        return view  # on its way: a start now would only throw away the owner's progress
    if await _too_many_waiting(runtime, salon):
        return LinkView.of(link, retry_after=BUSY_RETRY_S)
    metadata = {"yclients_salon_id": str(salon.yclients_salon_id)}
    relink = link.status in (LinkStatus.FAILED, LinkStatus.LOGGED_OUT) and link.connected_phone is not None
    started = time.perf_counter()
    try:
        state = await runtime.breaker.call(
            lambda: _start_and_wait_for_qr(runtime, link.session_name, metadata, relink=relink))
    except CircuitOpen as exc:
        return LinkView.of(link, retry_after=max(1.0, exc.retry_after))
    except (GatewayError, TimeoutError) as exc:
        runtime.metrics.gateway_error(type(exc).__name__)
        summary = summarize_error(exc)
        log.warning("WhatsApp session did not start",
                    extra={"yclients_salon_id": salon.yclients_salon_id, "error": summary})
        stored = await _store(runtime, salon.pk, LinkState(LinkStatus.FAILED), error=summary)
        return LinkView.of(stored, problem="whatsapp.problem_gateway")
    runtime.metrics.qr_generated(time.perf_counter() - started)
    return LinkView.of(await _store(runtime, salon.pk, state))


async def request_pairing_code(runtime: WhatsAppDeps, salon: Salon, phone_digits: str) -> LinkView:
    """Link by phone number: needs a session showing a QR, then asks for a code."""
    view = await start(runtime, salon)
    if view.retry_after is not None or view.status is not LinkStatus.AWAITING_SCAN:
        return view
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon.pk, salon.yclients_salon_id)
    try:
        async with asyncio.timeout(runtime.settings.waha_timeout_s):
            code = await runtime.gateway.request_pairing_code(link.session_name, phone_digits)
    except (GatewayError, TimeoutError) as exc:
        log.warning("pairing code refused",
                    extra={"yclients_salon_id": salon.yclients_salon_id, "error": summarize_error(exc)})
        problem = "whatsapp.problem_pairing_state" if isinstance(exc, GatewayConflict) else "whatsapp.problem_gateway"
        return LinkView.of(link, problem=problem)
    async with runtime.pool.acquire() as conn:
        link = await links.save_pairing_code(conn, salon.pk, code, PAIRING_CODE_LIFETIME_S)
    await events.record_quietly(runtime.pool, salon.pk, "pairing_code_requested", {})
    return LinkView.of(link)


async def back_to_qr(runtime: WhatsAppDeps, salon: Salon) -> LinkView:
    """Forget a shown pairing code so the QR shows again; a QR no longer live starts anew."""
    async with runtime.pool.acquire() as conn:
        link = await links.drop_pairing_code(conn, salon.pk)
    view = LinkView.of(link)
    return view if view.qr and (view.qr_expires_in or 0) > 1 else await start(runtime, salon)


async def gateway_call(runtime: GatewayDeps, call: Awaitable[object]) -> str | None:
    """Run a gateway call (an awaitable) with the gateway timeout, for actions that undo or
    restart a session: None when done (a missing session counts: nothing to undo), else
    the error as a short safe sentence."""
    try:
        async with asyncio.timeout(runtime.settings.waha_timeout_s):
            await call
    except SessionNotFound:
        return None
    except (GatewayError, TimeoutError) as exc:
        return summarize_error(exc)
    return None


async def confirm_passkey(runtime: WhatsAppDeps, salon: Salon) -> LinkView:
    """The owner says the code shown matches the phone's: tell the gateway, then show where
    the session stands (usually on its way to connected)."""
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon.pk, salon.yclients_salon_id)
    if link.status is not LinkStatus.PASSKEY:
        return LinkView.of(link)  # a second press, or the step is over: nothing to confirm
    error = await gateway_call(runtime, runtime.gateway.confirm_passkey(link.session_name))
    if error is not None:
        log.warning("passkey confirmation refused", extra={"yclients_salon_id": salon.yclients_salon_id,
                                                          "error": error})
        return LinkView.of(link, problem="whatsapp.problem_passkey")
    await events.record_quietly(runtime.pool, salon.pk, "passkey_confirmed", {})
    return LinkView.of(await _refresh(runtime, salon.pk, link))


async def disconnect(runtime: WhatsAppDeps, salon: Salon, *, by: str, relink: bool = False) -> str | None:
    """The owner unlinks the salon's number (`relink`: to link one again at once): logged out
    at the gateway, stored as logged out, recorded (who, which number, why). Stored even when
    the gateway refused: the owner asked for the number to be unlinked, and links again either
    way. The gateway's error, if any, is returned."""
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon.pk, salon.yclients_salon_id)
    error = await gateway_call(runtime, runtime.gateway.logout(link.session_name))
    if error is not None:
        log.warning("gateway refused an owner's logout",
                    extra={"yclients_salon_id": salon.yclients_salon_id, "error": error})
    cause = f"{by}_relink" if relink else f"{by}_disconnect"
    await _store(runtime, salon.pk, LinkState(LinkStatus.LOGGED_OUT), error=error, cause=cause)
    await events.record_quietly(runtime.pool, salon.pk, "whatsapp_disconnected", {
        "by": by, "relink": relink, "phone": mask_phone(link.phone or link.connected_phone),
        "gateway_error": error})
    return error
