"""An in-process stand-in for a WhatsApp gateway, for demo mode and tests.

This module owns `SimulatedGateway`: it walks a session through the same life a real
WAHA session has — starting, a cycle of rotating QR codes that runs out, a scan or a
pairing code, WhatsApp's passkey step when asked for, linking, connected, logged out — plus
the controls a demo or test needs (`scan`, `enter_pairing_code`, `approve_passkey`,
`unlink_device`, `fail_session`, `set_fault`), and it keeps the messages its sessions send
(`sent_texts`), so the sandbox's phone can show them.

Time is read from an injected clock and every transition is computed when someone
looks, so nothing runs in the background and a test moves time by moving its clock.
All state lives on the instance: two apps in one process never share a session.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from portal.whatsapp.link import (
    GatewayConflict,
    GatewayUnavailable,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    SessionNotFound,
    StatusUpdate,
    validate_phone_digits,
)

Fault = Literal["down", "slow", "failing"]
_FAULTS: frozenset[str] = frozenset({"down", "slow", "failing"})
_PAIRING_ALPHABET = string.ascii_uppercase + string.digits


def _qr_payload() -> str:
    """Random text shaped like a WhatsApp linking QR: "2@ref,noiseKey,identityKey,secret"."""

    def b64(n: int) -> str:
        return base64.b64encode(secrets.token_bytes(n)).decode()

    return f"2@{secrets.token_urlsafe(48)},{b64(32)},{b64(32)},{b64(32)}"


def _pairing_code() -> str:
    def half() -> str:
        return "".join(secrets.choice(_PAIRING_ALPHABET) for _ in range(4))

    return f"{half()}-{half()}"


@dataclass(frozen=True)
class SentText:
    """A message a session sent: what the receiving phone shows."""

    session: str
    to: str  # digits
    text: str


@dataclass
class _Session:
    """One simulated session. `phase` says which clock-driven story it is in."""

    metadata: dict[str, Any]
    # "cycle": starting → QR 1..n → expired, measured from `since`
    # "linking": linking until `since + linking_s`, then connected as `phone`
    # "passkey": WhatsApp wants the new device confirmed (`passkey_code`: a code to compare)
    # "connected" | "idle" | "failed" | "logged_out": stays put
    phase: str
    since: float
    qrs: list[str] = field(default_factory=list)
    phone: str | None = None
    # pairing code → the phone number it was requested for, valid this cycle only
    pairing: dict[str, str] = field(default_factory=dict)
    passkey_code: str | None = None


class SimulatedGateway:
    """A `WhatsAppGateway` that lives in memory and follows an injected clock."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        starting_s: float = 2.0,
        qr_first_ttl_s: float = 60.0,
        qr_next_ttl_s: float = 20.0,
        qr_count: int = 6,
        linking_s: float = 2.0,
        slow_s: float = 60.0,
    ) -> None:
        if qr_count < 1:
            raise ValueError("qr_count must be at least 1")
        self._clock = clock
        self._starting_s = starting_s
        self._qr_first_ttl_s = qr_first_ttl_s
        self._qr_next_ttl_s = qr_next_ttl_s
        self._qr_count = qr_count
        self._linking_s = linking_s
        self.slow_s = slow_s
        self._fault: Fault | None = None
        self._sessions: dict[str, _Session] = {}
        self._sent: list[SentText] = []

    # --- fault injection --------------------------------------------------------------

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def set_fault(self, mode: Fault | None) -> None:
        """None: healthy. "down": every call fails at once. "slow": every call waits
        `slow_s` first (cancellable, like a hung gateway). "failing": starting a
        session (start_session, restart) fails; reads still work."""
        if mode is not None and mode not in _FAULTS:
            raise ValueError(f"unknown fault mode {mode!r}")
        self._fault = mode

    async def _gateway_call(self, *, starts_session: bool = False) -> None:
        if self._fault == "down":
            raise GatewayUnavailable("simulated gateway is down")
        if self._fault == "slow":
            await asyncio.sleep(self.slow_s)
        if self._fault == "failing" and starts_session:
            raise GatewayUnavailable("simulated gateway failed to start the session")

    # --- the WhatsAppGateway contract -------------------------------------------------

    async def start_session(self, name: str, *, metadata: Mapping[str, Any]) -> LinkState:
        await self._gateway_call(starts_session=True)
        session = self._sessions.get(name)
        if session is None:
            session = self._sessions[name] = _Session(dict(metadata), "idle", self._clock())
        session.metadata = dict(metadata)
        # Idempotent: a session already on its way is left alone; one that came to
        # rest (stopped, ran out of QRs, failed, logged out) gets a fresh cycle.
        if self._status(session) in _AT_REST:
            self._new_cycle(session)
        return self._state(session)

    async def get_state(self, name: str) -> LinkState:
        await self._gateway_call()
        session = self._sessions.get(name)
        return LinkState(LinkStatus.IDLE) if session is None else self._state(session)

    async def refresh(self, name: str, *, known: LinkStatus, want_qr: bool) -> LinkState:
        # In-process: one "call" either way; the QR comes along, as it costs nothing here.
        return await self.get_state(name)

    async def list_states(self) -> dict[str, LinkState]:
        await self._gateway_call()
        return {name: LinkState(state.status, phone=state.phone)
                for name, state in ((n, self._state(s)) for n, s in self._sessions.items())}

    async def request_pairing_code(self, name: str, phone_digits: str) -> str:
        phone = validate_phone_digits(phone_digits)
        await self._gateway_call()
        session = self._awaiting_scan(name, "request a pairing code")
        code = _pairing_code()
        session.pairing[code] = phone
        return code

    async def send_text(self, name: str, phone_digits: str, text: str) -> None:
        phone = validate_phone_digits(phone_digits)
        await self._gateway_call()
        session = self._existing(name)
        status = self._status(session)
        if status is not LinkStatus.CONNECTED:
            raise GatewayConflict(f"cannot send a message: session is {status}")
        self._sent.append(SentText(name, phone, text))

    async def confirm_passkey(self, name: str) -> None:
        await self._gateway_call()
        session = self._existing(name)
        if session.phase != "passkey" or session.passkey_code is None or session.phone is None:
            raise GatewayConflict("no passkey code is waiting for a confirmation")
        self._link(session, session.phone)

    async def restart(self, name: str) -> None:
        await self._gateway_call(starts_session=True)
        session = self._existing(name)
        if session.phone is not None:
            # A linked (or linking) account survives a restart: it reconnects without
            # a new scan, passing through linking as a WAHA session passes STARTING.
            self._link(session, session.phone)
        else:
            self._new_cycle(session)

    async def logout(self, name: str) -> None:
        await self._gateway_call()
        session = self._existing(name)
        was_linked = self._status(session) in (LinkStatus.CONNECTED, LinkStatus.LINKING)
        self._settle(session, "logged_out" if was_linked else "idle")

    async def delete(self, name: str) -> None:
        await self._gateway_call()
        self._sessions.pop(name, None)

    async def aclose(self) -> None:
        pass  # nothing to release: no connections, no background tasks

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> StatusUpdate:
        # The simulator never sends webhooks, so anything arriving claiming to be one
        # from it is not genuine.
        raise InvalidWebhook("the simulated gateway sends no webhooks")

    # --- demo and test controls (the "phone" side; not affected by faults) -------------

    def scan(self, name: str, phone_digits: str, *, passkey: bool = False, passkey_code: str | None = None) -> None:
        """The salon's phone scans the current QR code; `passkey`: WhatsApp then asks for a
        passkey (with `passkey_code`: a code to compare and confirm) before linking."""
        phone = validate_phone_digits(phone_digits)
        session = self._awaiting_scan(name, "scan")
        if passkey or passkey_code is not None:
            self._settle(session, "passkey")
            session.phone, session.passkey_code = phone, passkey_code
            return
        self._link(session, phone)

    def approve_passkey(self, name: str) -> None:
        """The owner completes WhatsApp's passkey prompt; the session goes on to linking."""
        session = self._existing(name)
        if session.phase != "passkey" or session.phone is None:
            raise GatewayConflict("no passkey step is waiting")
        self._link(session, session.phone)

    def enter_pairing_code(self, name: str, code: str) -> None:
        """The salon types a pairing code on the phone it was requested for."""
        session = self._awaiting_scan(name, "enter a pairing code")
        phone = session.pairing.get(code.strip().upper())
        if phone is None:
            raise GatewayConflict("pairing code is not valid for this session")
        self._link(session, phone)

    def unlink_device(self, name: str) -> None:
        """The phone removes the linked device: the account is gone from the session."""
        self._settle(self._existing(name), "logged_out")

    def fail_session(self, name: str) -> None:
        """The gateway gives up on a session (crash, ban): it shows as failed."""
        self._settle(self._existing(name), "failed")

    def sent_texts(self, name: str) -> list[SentText]:
        """The messages the session sent, newest first: the phone's inbox in the sandbox."""
        return [sent for sent in reversed(self._sent) if sent.session == name]

    def session_metadata(self, name: str) -> dict[str, Any]:
        return dict(self._existing(name).metadata)

    # --- the clock-driven story ---------------------------------------------------------

    def _new_cycle(self, session: _Session) -> None:
        session.phase, session.since = "cycle", self._clock()
        # Drawn up front so each rotation shows a distinct, stable code.
        session.qrs = [_qr_payload() for _ in range(self._qr_count)]
        session.phone = None
        session.pairing = {}

    def _link(self, session: _Session, phone: str) -> None:
        session.phase, session.since, session.phone = "linking", self._clock(), phone
        session.qrs, session.pairing, session.passkey_code = [], {}, None

    def _settle(self, session: _Session, phase: str) -> None:
        session.phase, session.since = phase, self._clock()
        session.qrs, session.pairing, session.passkey_code = [], {}, None
        if phase != "connected":
            session.phone = None

    def _state(self, session: _Session) -> LinkState:
        now = self._clock()
        if session.phase == "linking":
            if now - session.since < self._linking_s:
                return LinkState(LinkStatus.LINKING, phone=session.phone)
            self._settle(session, "connected")  # materialise, so later phases start from here
        if session.phase == "passkey":
            return LinkState(LinkStatus.PASSKEY, passkey_code=session.passkey_code)
        if session.phase != "cycle":
            return LinkState(_RESTING[session.phase], phone=session.phone)

        elapsed = now - session.since
        if elapsed < self._starting_s:
            return LinkState(LinkStatus.STARTING)
        showing = elapsed - self._starting_s  # time since the first QR appeared
        if showing < self._qr_first_ttl_s:
            return LinkState(
                LinkStatus.AWAITING_SCAN, qr=session.qrs[0], qr_expires_in=self._qr_first_ttl_s - showing
            )
        after_first = showing - self._qr_first_ttl_s
        index = 1 + int(after_first // self._qr_next_ttl_s)
        if index >= self._qr_count:
            return LinkState(LinkStatus.EXPIRED)
        left = self._qr_next_ttl_s - (after_first - (index - 1) * self._qr_next_ttl_s)
        return LinkState(LinkStatus.AWAITING_SCAN, qr=session.qrs[index], qr_expires_in=left)

    def _status(self, session: _Session) -> LinkStatus:
        return self._state(session).status

    def _existing(self, name: str) -> _Session:
        session = self._sessions.get(name)
        if session is None:
            raise SessionNotFound("no such session")
        return session

    def _awaiting_scan(self, name: str, action: str) -> _Session:
        session = self._existing(name)
        status = self._status(session)
        if status is not LinkStatus.AWAITING_SCAN:
            raise GatewayConflict(f"cannot {action}: session is {status}")
        return session


_RESTING = {
    "idle": LinkStatus.IDLE,
    "connected": LinkStatus.CONNECTED,
    "failed": LinkStatus.FAILED,
    "logged_out": LinkStatus.LOGGED_OUT,
}
_AT_REST = frozenset(
    {LinkStatus.IDLE, LinkStatus.EXPIRED, LinkStatus.FAILED, LinkStatus.LOGGED_OUT}
)
