"""Changing a working WhatsApp link needs the working phone.

Whoever holds an owner's credential for a salon could otherwise log its connected number out
and link their own. So before an owner relinks or disconnects a salon whose link works, the
portal sends a short code as a WhatsApp message through the salon's own session to its own
number (the "message yourself" chat), and the action goes ahead only with that code. A link
that is already lost protects nothing: relinking it needs no code.

The code: six random digits (`secrets`), kept only as an HMAC under the portal's session
secret (six digits are quickly guessed from a bare hash), valid for `CODE_LIFETIME_S`, at most
`MAX_ATTEMPTS` tries, used once, one pending per salon (a new one replaces it), a new one not
sooner than `RESEND_AFTER_S` after the last. Staff actions do not pass here: they are staff.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from portal.salons import event_store as events
from portal.salons.ids import SalonPk
from portal.salons.store import Salon
from portal.whatsapp import confirmation_store as store
from portal.whatsapp import store as links
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.deps import GatewayDeps
from portal.whatsapp.link import GatewayError, LinkStatus
from portal.whatsapp.phones import mask_phone

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_LIFETIME_S = 600.0
RESEND_AFTER_S = 60.0
MAX_ATTEMPTS = 5
_WORKING = (LinkStatus.CONNECTED, LinkStatus.LINKING)


@dataclass(frozen=True)
class Protected:
    """A salon whose link works: where its code goes."""

    session: str
    phone: str | None  # digits; None when not even the gateway names the number

    @property
    def sent_to(self) -> str:
        return mask_phone(self.phone) or "•••"


@dataclass(frozen=True)
class Step:
    """What the owner's confirmation step shows for a protected salon."""

    sent_to: str  # the masked number the code goes (or went) to
    code_pending: bool  # a code was sent and may still be typed
    resend_in: int  # whole seconds until a new code may be sent (0: now)


class Sent(StrEnum):
    SENT = "sent"
    TOO_SOON = "too_soon"
    FAILED = "failed"  # the gateway did not send it: nothing is pending
    NOT_NEEDED = "not_needed"  # the link is not working: nothing to protect


class Checked(StrEnum):
    CONFIRMED = "confirmed"
    WRONG = "wrong"
    EXPIRED = "expired"  # none sent, expired, used, or its tries used up


def _hash(secret: str, salon_pk: SalonPk, code: str) -> bytes:
    key = hashlib.sha256(b"portal.phone-confirmation.v1:" + secret.encode()).digest()
    return hmac.new(key, f"{salon_pk}:{code}".encode(), hashlib.sha256).digest()


async def protected(runtime: GatewayDeps, salon: Salon) -> Protected | None:
    """The salon's working link (connected, or linking a scanned phone), else None."""
    async with runtime.pool.acquire() as conn:
        link = await links.get_or_create(conn, salon.pk, salon.yclients_salon_id)
    if link.status not in _WORKING:
        return None
    return Protected(link.session_name, link.phone or link.connected_phone)


async def step(runtime: GatewayDeps, salon: Salon, target: Protected) -> Step:
    async with runtime.pool.acquire() as conn:
        pending = await store.pending(conn, salon.pk, RESEND_AFTER_S)
    if pending is None:
        return Step(target.sent_to, False, 0)
    usable = pending.expires_in > 0 and pending.attempts < MAX_ATTEMPTS
    return Step(pending.sent_to if usable else target.sent_to, usable, max(0, math.ceil(pending.resend_in)))


async def send_code(runtime: GatewayDeps, salon: Salon, message: Callable[[str], str]) -> Sent:
    """Send a new code (`message(code)` is the text) through the salon's own session."""
    target = await protected(runtime, salon)
    if target is None:
        return Sent.NOT_NEEDED
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    digest = _hash(runtime.settings.session_secret, salon.pk, code)
    async with runtime.pool.acquire() as conn:
        if not await store.claim_send(conn, salon.pk, digest, target.sent_to, CODE_LIFETIME_S, RESEND_AFTER_S):
            return Sent.TOO_SOON
    try:
        if target.phone is None:
            raise GatewayError("the linked number is not known")
        async with asyncio.timeout(runtime.settings.waha_timeout_s):
            await runtime.gateway.send_text(target.session, target.phone, message(code))
    except (GatewayError, TimeoutError, ValueError) as exc:
        log.warning("confirmation code not sent",
                    extra={"yclients_salon_id": salon.yclients_salon_id, "error": summarize_error(exc)})
        async with runtime.pool.acquire() as conn:
            await store.withdraw(conn, salon.pk, digest)  # nothing was sent: nothing is pending
        return Sent.FAILED
    await events.record_quietly(runtime.pool, salon.pk, "phone_confirmation_sent", {"to": target.sent_to})
    return Sent.SENT


def _digits(given: str) -> str:
    return "".join(c for c in given[:32] if c in "0123456789")


# The trail's event for each outcome, spelled out so staff's words can be checked for each.
_CHECKED_EVENTS = {Checked.CONFIRMED: "phone_confirmation_confirmed", Checked.WRONG: "phone_confirmation_wrong",
                   Checked.EXPIRED: "phone_confirmation_expired"}


async def check_code(runtime: GatewayDeps, salon: Salon, given: str) -> Checked:
    """Try the owner's code; a right one is used up at once (once: also under concurrency)."""
    async with runtime.pool.acquire() as conn:
        tried = await store.try_code(conn, salon.pk, MAX_ATTEMPTS)
        if tried is None:
            return Checked.EXPIRED
        stored, attempts = tried
        right = hmac.compare_digest(stored, _hash(runtime.settings.session_secret, salon.pk, _digits(given)))
        if right and await store.use(conn, salon.pk, stored):
            outcome = Checked.CONFIRMED
        else:
            outcome = Checked.WRONG if not right else Checked.EXPIRED
    await events.record_quietly(runtime.pool, salon.pk, _CHECKED_EVENTS[outcome], {"attempt": attempts})
    return outcome
