"""The Evolution API (v2, `EvolutionAPI/evolution-api`) adapter of `WhatsAppGateway`.

Everything here is read from Evolution's own source: `src/api/routes/instance.router.ts`
and `src/api/controllers/instance.controller.ts` (the calls and their answers),
`whatsapp.baileys.service.ts` (`connectionUpdate`: the QR cycle, the events), the
`webhook.controller.ts` envelope, and `src/main.ts` (the error body).

    POST   /instance/create              {instanceName, integration, qrcode, webhook} → 201;
                                         403 when the name is taken
    GET    /instance/connectionState/{n} {instance: {instanceName, state}}: open | connecting | close
    GET    /instance/connect/{n}?number= starts a closed instance; answers its QR object
                                         {pairingCode, code, base64, count} (code: the QR text)
    GET    /instance/fetchInstances?instanceName=  [{ownerJid, …}]: the linked number
    GET    /instance/fetchInstances      every instance: [{name, connectionStatus, ownerJid, …}]
                                         (`monitor.service.ts` `instanceInfo`: the Instance rows
                                         of `prisma/postgresql-schema.prisma`), the safety sweep's list
    POST   /instance/restart/{n}, DELETE /instance/logout/{n}, DELETE /instance/delete/{n}
    POST   /message/sendText/{n}         {number, text} → 201

Status mapping (Evolution → neutral): `open` → connected (the number from `ownerJid`, read
once, when the link becomes connected); `connecting` → awaiting_scan while a QR is shown, else
starting; `close` (or no state) → expired. Why `close` is "expired": Evolution closes an
instance when its QR limit (`QRCODE_LIMIT`) runs out, and also when the phone removed the
device (reason 401); for a link that was connected the portal says "logged out" itself, and
for one that waited the remedy is the same fresh start. Evolution has no passkey step.

Evolution answers some failures as HTTP 200 with `{"error": true, "message"}` (`connect` and
`restart` catch their own errors): the body is read, never only the status. Its webhooks are
not signed; the portal puts a shared secret in the instance's webhook `headers` (sent with
every delivery) and compares it in constant time. The envelope may carry the instance's
`apikey`: nothing of a webhook body is ever logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from portal.whatsapp.gateways.http import TOKEN_HEADER, GatewayHttp, WebhookGate, json_object, segment
from portal.whatsapp.link import (
    GatewayConflict,
    GatewayError,
    LinkState,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
    StatusUpdate,
    validate_phone_digits,
)

log = logging.getLogger(__name__)

EVENTS = ("QRCODE_UPDATED", "CONNECTION_UPDATE")
_HINTS = {"open": LinkStatus.CONNECTED, "connecting": LinkStatus.AWAITING_SCAN}


def phone_from_jid(jid: Any) -> str | None:
    """Digits of a WhatsApp id like "79161234567@s.whatsapp.net" (Evolution's `ownerJid`/`wuid`)."""
    if not isinstance(jid, str):
        return None
    digits = jid.split("@", 1)[0].split(":", 1)[0]
    return digits if digits.isascii() and digits.isdigit() else None


class EvolutionGateway:
    """Drives one Evolution API server over HTTP with a single pooled client."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        accept_unauthenticated_webhooks: bool = False,
        timeout_s: float = 10,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Evolution does not sign its webhooks: the token is their one authentication.
        self._webhooks = WebhookGate(webhook_url, webhook_token, accept_unauthenticated=accept_unauthenticated_webhooks)
        # `create` with a QR waits 5 s inside Evolution and `connect` 2 s: the default of
        # 10 s leaves room for either.
        self._http = GatewayHttp(
            base_url, {"apikey": api_key}, gateway="evolution", log=log, unit="instance",
            refusal=_refusal, answer_check=_error_answer, timeout_s=timeout_s, transport=transport,
        )

    def __repr__(self) -> str:  # never show the key, not even in a debugger
        return f"EvolutionGateway({self._http.base_url!r})"

    # --- the WhatsAppGateway contract -----------------------------------------------

    async def start_session(self, name: str, *, metadata: Mapping[str, Any]) -> LinkState:
        # Evolution keeps no free-form metadata on an instance: the name says whose it is.
        try:
            created = await self._http.call("POST", "/instance/create", "create instance", json=self._create_body(name))
        except GatewayConflict:
            # The name is taken (403): our instance from an earlier start. Start it if closed.
            if await self._connection_state(name) in (None, "close"):
                await self._http.call("GET", f"/instance/connect/{_seg(name)}", "connect instance")
        else:
            code = _qr_code(created.get("qrcode") if isinstance(created, Mapping) else None)
            if code is not None:
                return LinkState(LinkStatus.AWAITING_SCAN, qr=code)
        return await self.get_state(name)

    async def get_state(self, name: str) -> LinkState:
        return await self.refresh(name, known=LinkStatus.IDLE, want_qr=True)

    async def refresh(self, name: str, *, known: LinkStatus, want_qr: bool) -> LinkState:
        """One call in steady state (the state); a second one only at a transition: the QR
        when one is wanted, the number when the link becomes connected."""
        try:
            state = await self._connection_state(name)
        except SessionNotFound:
            return LinkState(LinkStatus.IDLE)
        if state == "open":
            if known is LinkStatus.CONNECTED:
                return LinkState(LinkStatus.CONNECTED)  # the number is known already
            return LinkState(LinkStatus.CONNECTED, phone=await self._owner_phone(name))
        if state == "connecting":
            if not want_qr and known is LinkStatus.AWAITING_SCAN:
                return LinkState(LinkStatus.AWAITING_SCAN)
            answer = await self._http.call("GET", f"/instance/connect/{_seg(name)}", "get QR")
            code = _qr_code(answer)
            return LinkState(LinkStatus.AWAITING_SCAN, qr=code) if code else LinkState(LinkStatus.STARTING)
        return LinkState(LinkStatus.EXPIRED)

    async def list_states(self) -> dict[str, LinkState]:
        answer = await self._http.call("GET", "/instance/fetchInstances", "list instances")
        if not isinstance(answer, list):
            raise GatewayError("list instances: response is not a JSON array")
        states: dict[str, LinkState] = {}
        for row in answer:
            if isinstance(row, Mapping) and isinstance(row.get("name"), str):
                state = row.get("connectionStatus")
                if state == "open":
                    states[row["name"]] = LinkState(LinkStatus.CONNECTED, phone=phone_from_jid(row.get("ownerJid")))
                else:  # the list holds no QR: "connecting" is a scan awaited, as far as it says
                    states[row["name"]] = LinkState(LinkStatus.AWAITING_SCAN if state == "connecting"
                                                    else LinkStatus.EXPIRED)
        return states

    async def request_pairing_code(self, name: str, phone_digits: str) -> str:
        phone = validate_phone_digits(phone_digits)
        path, params = f"/instance/connect/{_seg(name)}", {"number": phone}
        code = _pairing_code(await self._http.call("GET", path, "request pairing code", params=params))
        if code is None:
            # Evolution asks WhatsApp for a code only on a connection begun with a number;
            # ours began with a QR. Close it and begin again with the number.
            with contextlib.suppress(GatewayConflict):
                await self._http.call("DELETE", f"/instance/logout/{_seg(name)}", "log out instance")
            code = _pairing_code(await self._http.call("GET", path, "request pairing code", params=params))
        if code is None:
            raise GatewayConflict("request pairing code: the instance gave no code")
        return code

    async def send_text(self, name: str, phone_digits: str, text: str) -> None:
        phone = validate_phone_digits(phone_digits)
        await self._http.call("POST", f"/message/sendText/{_seg(name)}", "send text",
                              json={"number": phone, "text": text})

    async def restart(self, name: str) -> None:
        await self._http.call("POST", f"/instance/restart/{_seg(name)}", "restart instance")

    async def logout(self, name: str) -> None:
        # 400 "is not connected": already logged out, which is what the caller wanted.
        with contextlib.suppress(GatewayConflict):
            await self._http.call("DELETE", f"/instance/logout/{_seg(name)}", "log out instance")

    async def delete(self, name: str) -> None:
        with contextlib.suppress(SessionNotFound):
            await self._http.call("DELETE", f"/instance/delete/{_seg(name)}", "delete instance")

    async def confirm_passkey(self, name: str) -> None:
        raise GatewayConflict("Evolution API has no passkey step")

    async def aclose(self) -> None:
        await self._http.aclose()

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> StatusUpdate:
        self._webhooks.admit(headers)
        event = json_object(body)
        kind, instance, data = event.get("event"), event.get("instance"), event.get("data")
        if kind not in ("qrcode.updated", "connection.update"):
            raise MalformedWebhook("webhook is not a qrcode.updated or connection.update event")
        if not isinstance(instance, str) or not instance or not isinstance(data, Mapping):
            raise MalformedWebhook("event without instance or data")
        if kind == "qrcode.updated":
            status = LinkStatus.AWAITING_SCAN
        else:
            status = _HINTS.get(str(data.get("state")), LinkStatus.EXPIRED)  # close, refused
        # Evolution gives an event no id: the digest of the whole body (its `date_time` is
        # to the millisecond) tells a re-delivery from a new event.
        return StatusUpdate(session=instance, status=status, phone=phone_from_jid(data.get("wuid")),
                            event_id="evolution:" + hashlib.sha256(body).hexdigest())

    # --- helpers --------------------------------------------------------------------

    def _create_body(self, name: str) -> dict[str, Any]:
        _seg(name)
        body: dict[str, Any] = {"instanceName": name, "integration": "WHATSAPP-BAILEYS", "qrcode": True}
        if self._webhooks.url:
            headers = {TOKEN_HEADER: self._webhooks.token} if self._webhooks.token else {}
            body["webhook"] = {"enabled": True, "url": self._webhooks.url, "headers": headers,
                               "byEvents": False, "base64": False, "events": list(EVENTS)}
        return body

    async def _connection_state(self, name: str) -> str | None:
        answer = await self._http.call("GET", f"/instance/connectionState/{_seg(name)}", "get state")
        instance = answer.get("instance") if isinstance(answer, Mapping) else None
        state = instance.get("state") if isinstance(instance, Mapping) else None
        return state if isinstance(state, str) else None

    async def _owner_phone(self, name: str) -> str | None:
        answer = await self._http.call("GET", "/instance/fetchInstances", "get instance", params={"instanceName": name})
        rows = answer if isinstance(answer, list) else []
        for row in rows:
            if isinstance(row, Mapping) and row.get("name") == name:
                return phone_from_jid(row.get("ownerJid"))
        return None


def _qr_code(answer: Any) -> str | None:
    code = answer.get("code") if isinstance(answer, Mapping) else None
    return code if isinstance(code, str) and code else None


def _pairing_code(answer: Any) -> str | None:
    code = answer.get("pairingCode") if isinstance(answer, Mapping) else None
    return code if isinstance(code, str) and code else None


def _seg(name: str) -> str:
    return segment(name, "instance")


def _refusal(what: str, response: httpx.Response) -> GatewayError | None:
    """403: the name is taken; 400: not possible in this state. Both a conflict."""
    code = response.status_code
    if code in (400, 403):
        return GatewayConflict(f"{what}: not possible now (HTTP {code})", status_code=code)
    return None


def _error_answer(what: str, code: int, answer: Any) -> None:
    """Evolution's "200 but failed": its message may echo anything, so it is not kept."""
    if isinstance(answer, Mapping) and answer.get("error") is True:
        raise GatewayConflict(f"{what}: Evolution answered an error", status_code=code)
