"""The gateway-neutral idea of "linking a salon's WhatsApp number".

This module owns the vocabulary the rest of the portal speaks: the link states a salon
sees, the shape of a status webhook, the session name derived from a salon, the errors
a gateway may raise, and the `WhatsAppGateway` protocol every gateway adapter (WAHA,
the in-process simulator, a future Evolution API adapter) implements. Nothing here
knows about HTTP or a particular gateway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class LinkStatus(StrEnum):
    """Where a salon's number is on the way from "nothing" to "the assistant can use it".

    idle → starting → awaiting_scan (QR or pairing code) → [passkey] → linking → connected,
    with expired (the QR cycle ran out: offer a new code), failed (offer retry) and
    logged_out (was connected, now is not: offer reconnect). `passkey` is WhatsApp asking
    the owner to confirm the new linked device (a passkey, sometimes a code to compare): a
    step to wait through, never a failure to retry over.
    """

    IDLE = "idle"
    STARTING = "starting"
    AWAITING_SCAN = "awaiting_scan"
    PASSKEY = "passkey"
    LINKING = "linking"
    CONNECTED = "connected"
    EXPIRED = "expired"
    FAILED = "failed"
    LOGGED_OUT = "logged_out"


@dataclass(frozen=True)
class LinkState:
    """What the portal shows for one session at one moment."""

    status: LinkStatus
    qr: str | None = None  # the QR payload text, only while awaiting_scan
    phone: str | None = None  # digits only, e.g. "79161234567", once linked
    qr_expires_in: float | None = None  # seconds the current QR still lives, if known
    passkey_code: str | None = None  # the code to compare with the phone's, in the passkey step


@dataclass(frozen=True)
class StatusUpdate:
    """A gateway's push notice that a session changed state (from a webhook)."""

    session: str
    status: LinkStatus
    phone: str | None = None
    # The delivery's identity, so a replay is recognised: the gateway's event id, or a
    # digest of the body for a gateway that sends none. None: the event cannot be told apart.
    event_id: str | None = None
    sent_at: float | None = None  # when the gateway says it sent it (Unix seconds), if it does


_SESSION_PREFIX = "salon-"
_PHONE_DIGITS = re.compile(r"\d{7,15}")  # E.164 allows at most 15 digits


def session_name(yclients_salon_id: int) -> str:
    """The gateway session name for a salon: stable, so a re-landing finds the same one."""
    # bool is an int subclass; True must not quietly become "salon-1".
    if isinstance(yclients_salon_id, bool) or not isinstance(yclients_salon_id, int):
        raise ValueError("salon id must be an int")
    if yclients_salon_id <= 0:
        raise ValueError("salon id must be positive")
    return f"{_SESSION_PREFIX}{yclients_salon_id}"


def validate_phone_digits(phone_digits: str) -> str:
    """Return `phone_digits` if it is an international number in digits only, else raise."""
    if not isinstance(phone_digits, str) or not _PHONE_DIGITS.fullmatch(phone_digits):
        raise ValueError("phone number must be 7-15 digits, country code first, no '+'")
    return phone_digits


# --- errors -------------------------------------------------------------------------


class GatewayError(Exception):
    """Something went wrong talking to the gateway.

    `safe_summary` is short and safe to log or show to an operator: it never holds a
    raw response body, a credential or a salon's personal data.
    """

    def __init__(self, safe_summary: str, *, status_code: int | None = None) -> None:
        super().__init__(safe_summary)
        self.safe_summary = safe_summary
        self.status_code = status_code


class GatewayUnavailable(GatewayError):
    """The gateway did not answer usefully: refused, timed out or answered 5xx."""


class GatewayAuthError(GatewayError):
    """The gateway rejected our API key (401): a configuration problem, not a retry."""


class SessionNotFound(GatewayError):
    """The gateway has no session by that name (404)."""


class GatewayConflict(GatewayError):
    """The request does not fit the session's state (422): name taken, not awaiting scan."""


class InvalidWebhook(GatewayError):
    """A webhook's signature is missing or wrong; the web layer answers 401."""


class MalformedWebhook(GatewayError):
    """A correctly signed webhook we cannot read; the web layer answers 400."""


# --- the contract ---------------------------------------------------------------------


@runtime_checkable
class WhatsAppGateway(Protocol):
    """What the portal needs from any WhatsApp gateway."""

    async def start_session(self, name: str, *, metadata: Mapping[str, Any]) -> LinkState:
        """Create the session or reuse an existing one, starting it if stopped.

        Idempotent: calling it on a session that is already on its way (starting,
        awaiting a scan, linking, connected) changes nothing. A session whose QR cycle
        ran out, that failed or was logged out gets a fresh cycle.
        """
        ...

    async def get_state(self, name: str) -> LinkState:
        """The current state, with the QR text while awaiting a scan; IDLE if unknown."""
        ...

    async def refresh(self, name: str, *, known: LinkStatus, want_qr: bool) -> LinkState:
        """The current state in as few gateway calls as it takes (one, in steady state).

        `known` is the status we hold; `want_qr` says whether we need a (new) QR text. A
        state awaiting a scan may come back without a QR when none was wanted: keep yours.
        """
        ...

    async def list_states(self) -> dict[str, LinkState]:
        """Every session the gateway has, by name, in ONE call: its status, and the phone where
        the list says it (never a QR). The safety sweep reads it for all salons at once and
        confirms only the sessions whose status differs from the stored one, each by `refresh`."""
        ...

    async def request_pairing_code(self, name: str, phone_digits: str) -> str:
        """A code like "ABCD-EFGH" to type on the phone; only while awaiting a scan."""
        ...

    async def send_text(self, name: str, phone_digits: str, text: str) -> None:
        """Send `text` as a WhatsApp message from the session's own account to `phone_digits`
        (the session's own number included: its "message yourself" chat). Only a connected
        session can send: otherwise GatewayConflict (or SessionNotFound)."""
        ...

    async def restart(self, name: str) -> None: ...

    async def logout(self, name: str) -> None: ...

    async def delete(self, name: str) -> None:
        """Remove the session; deleting a session that does not exist is not an error."""
        ...

    async def confirm_passkey(self, name: str) -> None:
        """The owner says the passkey step's code matches their phone's; GatewayConflict when
        the session is not in that step (or the gateway has no passkey step at all)."""
        ...

    async def aclose(self) -> None: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> StatusUpdate:
        """Verify and read a status webhook; raises InvalidWebhook or MalformedWebhook."""
        ...
