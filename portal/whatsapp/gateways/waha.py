"""The WAHA (WhatsApp HTTP API) adapter of `WhatsAppGateway`.

This module owns everything WAHA-specific: its endpoints and JSON shapes, the mapping
of WAHA session statuses onto the neutral `LinkStatus`, WAHA's own refusal (a wrong-state
422) among the HTTP failures `gateways/http.py` maps onto `GatewayError` subclasses, and the
verification of WAHA's signed `session.status` webhooks.

The safety sweep's list: `GET /api/sessions?all=true`, the SessionInfo of every session.
Status mapping (WAHA → neutral):
    STOPPED                       → idle
    STARTING, no `me` yet         → starting
    STARTING, `me` present        → linking (WAHA restarts the session after a scan)
    SCAN_QR_CODE                  → awaiting_scan
    PASSKEY_REQUIRED              → passkey (WhatsApp wants a passkey for the new device)
    PASSKEY_CONFIRMATION_REQUIRED → passkey, with the code read from
                                    `GET /api/{session}/auth/passkey/confirmation`
    WORKING                       → connected (phone from `me.id`)
    FAILED, no `me`               → expired
    FAILED, `me` present          → failed
    anything else                 → failed (logged, so a new WAHA status gets noticed)

Why FAILED without `me` is "expired": WAHA gives no reason with FAILED, and the one
failure a not-yet-linked session routinely meets is the QR cycle running out. Were it
some other start-up failure, "expired" still offers the right remedy (a fresh start),
so the guess costs nothing. A session that had an account (`me`) and failed did not
time out waiting for a scan, so it is reported as failed.

WAHA has no "logged out" status; `get_state` never reports `logged_out`. The portal
knows a number was connected and can say so itself.

The passkey statuses (GOWS engine, WAHA 2026.7.1; waha-docs how-to/sessions#passkey) are a
step of the pairing, not a failure. A `PASSKEY_REQUIRED` challenge can only be signed on the
web.whatsapp.com origin (WAHA's browser extension); the portal shows the step and waits. The
rarer `PASSKEY_CONFIRMATION_REQUIRED` carries a code the owner compares with the phone's and
confirms (`POST /api/{session}/auth/passkey/confirm`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from portal.whatsapp.gateways.http import TOKEN_HEADER, GatewayHttp, WebhookGate, header, json_object, segment
from portal.whatsapp.link import (
    GatewayConflict,
    GatewayError,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
    StatusUpdate,
    validate_phone_digits,
)

log = logging.getLogger(__name__)

HMAC_HEADER = "x-webhook-hmac"
HMAC_ALGORITHM_HEADER = "x-webhook-hmac-algorithm"
STATUS_EVENT = "session.status"
# Failed deliveries are sent again by WAHA (waha-docs how-to/events#retries): 2, 4, 8, 16,
# 32 s with jitter, about a minute in all, which covers a portal restart or a gateway blip.
WEBHOOK_RETRIES = {"policy": "exponential", "delaySeconds": 2, "attempts": 6}
_CONFIRMING = "PASSKEY_CONFIRMATION_REQUIRED"


def phone_from_me(me: Any) -> str | None:
    """Digits of the linked account from WAHA's `me`, e.g. {"id": "79161234567@c.us"}."""
    if not isinstance(me, Mapping):
        return None
    account_id = me.get("id")
    if not isinstance(account_id, str):
        return None
    # Some engines add a device suffix ("79161234567:12@s.whatsapp.net").
    digits = account_id.split("@", 1)[0].split(":", 1)[0]
    return digits if digits.isascii() and digits.isdigit() else None


def link_status(waha_status: Any, me: Any) -> LinkStatus:
    """Map a WAHA session status (plus whether an account is attached) to LinkStatus."""
    has_account = phone_from_me(me) is not None
    match waha_status:
        case "STOPPED":
            return LinkStatus.IDLE
        case "STARTING":
            return LinkStatus.LINKING if has_account else LinkStatus.STARTING
        case "SCAN_QR_CODE":
            return LinkStatus.AWAITING_SCAN
        case "PASSKEY_REQUIRED" | "PASSKEY_CONFIRMATION_REQUIRED":
            return LinkStatus.PASSKEY
        case "WORKING":
            return LinkStatus.CONNECTED
        case "FAILED":
            return LinkStatus.FAILED if has_account else LinkStatus.EXPIRED
    log.warning(
        "unknown WAHA session status, treated as failed",
        extra={"gateway": "waha", "waha_status": str(waha_status)[:40]},
    )
    return LinkStatus.FAILED


class WahaGateway:
    """Drives one WAHA server over HTTP with a single pooled client."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        webhook_url: str | None = None,
        webhook_hmac_key: str | None = None,
        webhook_token: str | None = None,
        accept_unauthenticated_webhooks: bool = False,
        timeout_s: float = 10,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._webhook_hmac_key = webhook_hmac_key.encode() if webhook_hmac_key else None
        # WAHA Core does not sign webhooks, but sends the `customHeaders` configured per
        # webhook: the shared secret there authenticates a delivery.
        self._webhooks = WebhookGate(webhook_url, webhook_token, accept_unauthenticated=accept_unauthenticated_webhooks)
        # WAHA's QR endpoint itself waits up to ~5 s for SCAN_QR_CODE; the default of
        # 10 s leaves room for that.
        self._http = GatewayHttp(
            base_url, {"X-Api-Key": api_key}, gateway="waha", log=log, unit="session",
            refusal=_refusal, timeout_s=timeout_s, transport=transport,
        )

    def __repr__(self) -> str:  # never show the key, not even in a debugger
        return f"WahaGateway({self._http.base_url!r})"

    # --- the WhatsAppGateway contract -----------------------------------------------

    async def start_session(self, name: str, *, metadata: Mapping[str, Any]) -> LinkState:
        body = self._create_body(name, metadata)
        try:
            await self._http.call("POST", "/api/sessions", "create session", json=body)
        except GatewayConflict as name_taken:
            await self._resume_existing(name, name_taken)
        return await self.get_state(name)

    async def get_state(self, name: str) -> LinkState:
        # Knowing nothing, with a QR wanted: the session, then its QR if it shows one.
        return await self.refresh(name, known=LinkStatus.IDLE, want_qr=True)

    async def _qr(self, name: str) -> str:
        answer = await self._http.call("GET", f"/api/{_seg(name)}/auth/qr", "get QR", params={"format": "raw"})
        value = answer.get("value") if isinstance(answer, Mapping) else None
        if not isinstance(value, str) or not value:
            raise GatewayError("get QR: response without a QR value")
        return value

    async def refresh(self, name: str, *, known: LinkStatus, want_qr: bool) -> LinkState:
        """One call in steady state: while a scan is awaited and a new QR is due, the QR
        endpoint alone (it answers only in SCAN_QR_CODE, so a QR *is* the status); else
        the session alone. A second call only at a transition (the QR endpoint refused, or
        the session just began showing a QR)."""
        if known is LinkStatus.AWAITING_SCAN and want_qr:
            try:
                return LinkState(LinkStatus.AWAITING_SCAN, qr=await self._qr(name))
            except GatewayConflict:
                pass  # no longer awaiting a scan: the session says where it is
        try:
            info = await self._session_info(name)
        except SessionNotFound:
            return LinkState(LinkStatus.IDLE)
        state = self._state_from(info)
        if info.get("status") == _CONFIRMING:
            # The rare second passkey step: the code is what the owner must compare.
            return LinkState(LinkStatus.PASSKEY, passkey_code=await self._passkey_code(name))
        if state.status is LinkStatus.AWAITING_SCAN and (want_qr or known is not LinkStatus.AWAITING_SCAN):
            try:
                return LinkState(LinkStatus.AWAITING_SCAN, qr=await self._qr(name))
            except GatewayConflict:
                # The session moved on between the two calls (usually: the QR was just
                # scanned). Report where it is now rather than a QR that no longer exists.
                return self._state_from(await self._session_info(name))
        return state

    async def list_states(self) -> dict[str, LinkState]:
        # `all=true`: STOPPED sessions too (without it WAHA lists only running ones).
        answer = await self._http.call("GET", "/api/sessions", "list sessions", params={"all": "true"})
        if not isinstance(answer, list):
            raise GatewayError("list sessions: response is not a JSON array")
        return {row["name"]: self._state_from(row) for row in answer if isinstance(row, Mapping) and "name" in row}

    async def request_pairing_code(self, name: str, phone_digits: str) -> str:
        phone = validate_phone_digits(phone_digits)
        answer = await self._http.call(
            "POST", f"/api/{_seg(name)}/auth/request-code", "request pairing code",
            json={"phoneNumber": phone},
        )
        code = answer.get("code") if isinstance(answer, Mapping) else None
        if not isinstance(code, str) or not code:
            raise GatewayError("request pairing code: response without a code")
        return code

    async def send_text(self, name: str, phone_digits: str, text: str) -> None:
        # WAHA's POST /api/sendText: `session`, `chatId` (<digits>@c.us), `text`. WAHA waits a
        # moment for WORKING and answers 422 (wrong state) or 404 (no session) otherwise.
        phone = validate_phone_digits(phone_digits)
        _seg(name)
        await self._http.call("POST", "/api/sendText", "send text",
                              json={"session": name, "chatId": f"{phone}@c.us", "text": text})

    async def confirm_passkey(self, name: str) -> None:
        await self._http.call("POST", f"/api/{_seg(name)}/auth/passkey/confirm", "confirm passkey")

    async def _passkey_code(self, name: str) -> str | None:
        try:
            answer = await self._http.call("GET", f"/api/{_seg(name)}/auth/passkey/confirmation", "get passkey code")
        except GatewayConflict:
            return None  # 422: nothing pending any more (confirmed or stopped meanwhile)
        code = answer.get("code") if isinstance(answer, Mapping) else None
        return code if isinstance(code, str) and 0 < len(code) <= 16 else None

    async def restart(self, name: str) -> None:
        await self._http.call("POST", f"/api/sessions/{_seg(name)}/restart", "restart session")

    async def logout(self, name: str) -> None:
        await self._http.call("POST", f"/api/sessions/{_seg(name)}/logout", "log out session")

    async def stop(self, name: str) -> None:
        await self._http.call("POST", f"/api/sessions/{_seg(name)}/stop", "stop session")

    async def delete(self, name: str) -> None:
        with contextlib.suppress(SessionNotFound):  # already gone: what the caller wanted
            await self._http.call("DELETE", f"/api/sessions/{_seg(name)}", "delete session")

    async def aclose(self) -> None:
        await self._http.aclose()

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> StatusUpdate:
        key = self._webhook_hmac_key
        self._webhooks.admit(headers, verify=functools.partial(verify_signature, key, body, headers) if key else None)
        event = json_object(body)
        if event.get("event") != STATUS_EVENT:
            raise MalformedWebhook("webhook is not a session.status event")
        session = event.get("session")
        payload = event.get("payload")
        status = payload.get("status") if isinstance(payload, Mapping) else None
        if not isinstance(session, str) or not session or not isinstance(status, str):
            raise MalformedWebhook("session.status webhook without session or status")
        me = event.get("me")
        event_id, sent_ms = event.get("id"), event.get("timestamp")
        return StatusUpdate(
            session=session, status=link_status(status, me), phone=phone_from_me(me),
            event_id=f"waha:{event_id}"[:120] if isinstance(event_id, str) and event_id else None,
            sent_at=sent_ms / 1000 if isinstance(sent_ms, int) and not isinstance(sent_ms, bool) else None)

    # --- helpers --------------------------------------------------------------------

    def _create_body(self, name: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        _seg(name)  # the same name check every other call makes
        # WAHA keeps metadata as string → string.
        config: dict[str, Any] = {"metadata": {str(k): str(v) for k, v in metadata.items()}}
        if self._webhooks.url:
            webhook: dict[str, Any] = {"url": self._webhooks.url, "events": [STATUS_EVENT],
                                       "retries": dict(WEBHOOK_RETRIES)}
            if self._webhook_hmac_key is not None:
                webhook["hmac"] = {"key": self._webhook_hmac_key.decode()}
            if self._webhooks.token is not None:
                webhook["customHeaders"] = [{"name": TOKEN_HEADER, "value": self._webhooks.token}]
            config["webhooks"] = [webhook]
        # `start` is sent explicitly: older WAHA versions default it differently.
        return {"name": name, "start": True, "config": config}

    async def _resume_existing(self, name: str, name_taken: GatewayConflict) -> None:
        """The session exists already: start it if stopped, give it a new cycle if failed."""
        try:
            info = await self._session_info(name)
        except SessionNotFound:
            # 422 for a name that does not exist: WAHA rejected the body, not the name.
            raise name_taken from None
        match info.get("status"):
            case "STOPPED":
                await self._http.call("POST", f"/api/sessions/{_seg(name)}/start", "start session")
            case "FAILED":
                await self.restart(name)

    async def _session_info(self, name: str) -> Mapping[str, Any]:
        info = await self._http.call("GET", f"/api/sessions/{_seg(name)}", "get session")
        if not isinstance(info, Mapping):
            raise GatewayError("get session: response is not a JSON object")
        return info

    def _state_from(self, info: Mapping[str, Any]) -> LinkState:
        me = info.get("me")
        status = link_status(info.get("status"), me)
        phone = phone_from_me(me) if status in (LinkStatus.CONNECTED, LinkStatus.LINKING) else None
        return LinkState(status, phone=phone)


def _seg(name: str) -> str:
    return segment(name, "session")


def _refusal(what: str, response: httpx.Response) -> GatewayError | None:
    """422 is WAHA's "not in this state": a conflict, whose body names the session's status;
    that one word is safe to keep. Any other 4xx is a plain failure."""
    if response.status_code != 422:
        return None
    try:
        status = response.json().get("status")
    except (ValueError, AttributeError):
        status = None
    if isinstance(status, str) and re.fullmatch(r"[A-Z_]{1,20}", status):
        return GatewayConflict(f"{what}: session is {status} (HTTP 422)", status_code=422)
    return GatewayConflict(f"{what}: not possible in the session's state (HTTP 422)", status_code=422)


def verify_signature(key: bytes, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise InvalidWebhook unless `headers` carry WAHA's HMAC-SHA512 of the raw body."""
    signature = header(headers, HMAC_HEADER)
    if not signature:
        raise InvalidWebhook("webhook signature missing")
    # WAHA signs with SHA-512 and says so; a different algorithm is not ours.
    algorithm = header(headers, HMAC_ALGORITHM_HEADER)
    if algorithm is not None and algorithm.strip().lower() != "sha512":
        raise InvalidWebhook("webhook signed with an unexpected algorithm")
    expected = hmac.new(key, body, hashlib.sha512).hexdigest()
    # Constant-time, so response timing does not leak how much of a forgery was right.
    # Compared as bytes: a non-ASCII header must be a mismatch, not a TypeError.
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), given):
        raise InvalidWebhook("webhook signature does not match")

